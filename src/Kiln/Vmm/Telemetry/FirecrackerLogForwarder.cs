// Firecracker's log (the FIFO or file given as --log-path or PUT /logger) into an ILogger, each line at its own
// level, so the host's logging (console, OpenTelemetry, Serilog, …) carries Firecracker's messages with Kiln's.
using System.Text;
using Microsoft.Extensions.Logging;

namespace Kiln.Vmm.Telemetry;

/// <summary>Forwards Firecracker's log lines to an <see cref="ILogger"/>.</summary>
public static partial class FirecrackerLogForwarder
{
    /// <summary>The logger category to use for Firecracker's own messages.</summary>
    public const string Category = "Kiln.Firecracker";

    /// <summary>
    /// Logs one line: a Firecracker log line at its level (Information when the logger does not show levels), any
    /// other text (a panic's trace, a message cut by a full pipe) as it is, at Information.
    /// </summary>
    public static void Forward(ILogger logger, string vmId, string line)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(line);
        if (FirecrackerLogLine.TryParse(line, out var parsed))
        {
            var level = parsed.Level ?? LogLevel.Information;
            if (parsed.Origin is null)
                Logged(logger, level, vmId, parsed.Thread, parsed.Message);
            else
                LoggedWithOrigin(logger, level, vmId, parsed.Thread, parsed.Message, parsed.Origin);
        }
        else if (line.Length > 0)
        {
            var text = line.TrimEnd('\r');
            Unparsed(logger, vmId, text);
        }
    }

    /// <summary>
    /// Forwards each line of <paramref name="path"/> (a FIFO or a file) until <see cref="FollowOptions.Until"/>
    /// completes and what was written is read, or until cancelled (a normal end).
    /// </summary>
    public static async Task RunAsync(string path, ILogger logger, string vmId, FollowOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(logger);
        try
        {
            await foreach (var line in FileFollower.ReadLinesAsync(path, options, cancellationToken).ConfigureAwait(false))
                Forward(logger, vmId, Encoding.UTF8.GetString(line.Span));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping the reader is its normal end, not a failure.
        }
    }

    [LoggerMessage(EventId = 100, Message = "firecracker {VmId} [{Thread}] {FirecrackerMessage}")]
    private static partial void Logged(ILogger logger, LogLevel level, string vmId, string thread, string firecrackerMessage);

    [LoggerMessage(EventId = 100, Message = "firecracker {VmId} [{Thread}] {FirecrackerMessage} ({Origin})")]
    private static partial void LoggedWithOrigin(ILogger logger, LogLevel level, string vmId, string thread, string firecrackerMessage, string origin);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "firecracker {VmId}: {FirecrackerOutput}")]
    private static partial void Unparsed(ILogger logger, string vmId, string firecrackerOutput);
}
