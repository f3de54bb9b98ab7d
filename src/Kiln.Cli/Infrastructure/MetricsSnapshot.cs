// Firecracker's metrics as they are now, for `kiln stats`: a detached sandbox's metrics FIFO has no reader, so what
// is buffered in it is old (and once the pipe is full Firecracker's writes fail). The stale lines are drained,
// Firecracker is asked to write a fresh line (FlushMetrics writes before it answers), and that line is read.
using Kiln.Vm;
using Kiln.Vmm;
using Kiln.Vmm.Telemetry;

namespace Kiln.Cli.Infrastructure;

internal sealed record MetricsSnapshot(long? TimestampMs, IReadOnlyDictionary<string, ulong> Values)
{
    /// <exception cref="CliFailureException">Firecracker wrote no well-formed line.</exception>
    public static async Task<MetricsSnapshot> ReadAsync(Microvm vm, string fifo, CancellationToken cancellationToken)
    {
        await DrainAsync(fifo, cancellationToken);
        await vm.FlushMetricsAsync(cancellationToken);
        var parser = new FirecrackerMetricsParser();
        var values = new List<FirecrackerMetricValue>();
        MetricsSnapshot? latest = null;
        await foreach (var line in FileFollower.ReadLinesAsync(fifo, new FollowOptions { Follow = false }, cancellationToken))
        {
            values.Clear();
            var result = parser.Parse(line.Span, values);
            if (result.Status == FirecrackerMetricsLineStatus.Parsed)
                latest = new MetricsSnapshot(result.TimestampMs, values.ToDictionary(v => v.Key.Path, v => v.Value, StringComparer.Ordinal));
        }
        return latest ?? throw new CliFailureException($"firecracker wrote no metrics line into {fifo} after FlushMetrics.");
    }

    private static async Task DrainAsync(string fifo, CancellationToken cancellationToken)
    {
        await foreach (var _ in FileFollower.ReadChunksAsync(fifo, new FollowOptions { Follow = false }, cancellationToken))
        {
            // Lines written before this look: not what "now" means.
        }
    }
}
