// The loop between Firecracker's metrics output (the FIFO or file given as --metrics-path or PUT /metrics) and the
// meter: every line Firecracker writes is published as it arrives.
using Kiln.Interop;

namespace Kiln.Vmm.Telemetry;

/// <summary>Reads Firecracker's metrics output and publishes every line.</summary>
public static class FirecrackerMetricsReader
{
    /// <summary>
    /// Creates a FIFO for Firecracker's metrics (mode 0600; an existing FIFO is kept). Firecracker writes a FIFO
    /// without blocking and a reader sees lines as they are flushed, with nothing growing on disk.
    /// </summary>
    public static void CreateFifo(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileNodes.CreateFifo(path);
    }

    /// <summary>
    /// Publishes each line of <paramref name="path"/> (a FIFO or a file) through <paramref name="publisher"/> until
    /// <see cref="FollowOptions.Until"/> completes and what was written is read, or until cancelled (which ends the
    /// loop normally: stopping the reader is not a failure). Malformed lines are counted and skipped.
    /// </summary>
    public static async Task RunAsync(string path, FirecrackerMetricsPublisher publisher, FollowOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        try
        {
            await foreach (var line in FileFollower.ReadLinesAsync(path, options, cancellationToken).ConfigureAwait(false))
                publisher.Publish(line.Span);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping the reader is its normal end, not a failure.
        }
    }
}
