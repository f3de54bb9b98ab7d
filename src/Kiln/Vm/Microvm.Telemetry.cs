// Firecracker's own output, made observable without wiring: a microVM this process launched with a metrics path has
// its metrics lines published through a Meter as they come (FirecrackerMetricsPublisher), and one with a log path
// and a logger factory has Firecracker's log lines forwarded to an ILogger at their levels. The readers run from the
// end of the start until the VMM's exit (what it wrote last is still read) or until this object lets go of a VMM
// that keeps running. An attached microVM starts none: another reader (its launcher's) may own those lines.
using Kiln.Vmm;
using Kiln.Vmm.Telemetry;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>How long a release waits for the readers to finish the VMM's last lines before it stops them.</summary>
    private static readonly TimeSpan ReaderDrainTimeout = TimeSpan.FromSeconds(2);

    private CancellationTokenSource? _readersStop;
    private Task _readers = Task.CompletedTask;

    /// <summary>
    /// What publishes this microVM's Firecracker metrics (lines published and skipped so far), while a reader runs on
    /// <see cref="MicrovmOptions.MetricsPath"/>; null otherwise.
    /// </summary>
    public FirecrackerMetricsPublisher? Metrics { get; private set; }

    /// <summary>Completes when the metrics and log readers have ended (at once when none run).</summary>
    public Task Telemetry => _readers;

    /// <summary>Has Firecracker write its metrics now (<c>FlushMetrics</c>), instead of at its next minute.</summary>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public Task FlushMetricsAsync(CancellationToken cancellationToken = default) =>
        LockedAsync("flush the metrics", "metrics.flush", [MicrovmState.Running, MicrovmState.Paused], ct => Client.FlushMetricsAsync(ct), cancellationToken);

    /// <summary>Starts the readers the options ask for; once, when a start succeeded.</summary>
    private void StartReaders()
    {
        var logPath = _options.LoggerFactory is null ? null : _options.LogPath;
        if (_options.MetricsPath is null && logPath is null)
            return;
        _readersStop = new CancellationTokenSource();
        var stop = _readersStop.Token;
        var follow = new FollowOptions { Until = _vmm.Exited, TimeProvider = _options.TimeProvider };
        var readers = new List<Task>();
        if (_options.MetricsPath is { } metricsPath)
        {
            var publisher = new FirecrackerMetricsPublisher(VmId, _options.Meter);
            Metrics = publisher;
            // Held open from here, on the starting thread, until the reader is done: the reader's own open runs on the
            // thread pool, and a loaded machine can start it after a short-lived VMM has written its lines and exited,
            // when a pipe nobody holds has dropped them (JailedMicrovmTests saw 0 of 2 lines under load).
            Microsoft.Win32.SafeHandles.SafeFileHandle? hold;
            try
            {
                hold = Kiln.Interop.FileNodes.HoldFifo(metricsPath);
            }
            catch (IOException)
            {
                hold = null; // the reader's own open meets the same failure and reports it (ReaderFailed)
            }
            readers.Add(RunReaderAsync("metrics", async () =>
            {
                using (hold)
                    await FirecrackerMetricsReader.RunAsync(metricsPath, publisher, follow, stop).ConfigureAwait(false);
            }));
        }
        if (logPath is not null)
        {
            var firecrackerLogger = _options.LoggerFactory!.CreateLogger(FirecrackerLogForwarder.Category);
            readers.Add(RunReaderAsync("log", () => FirecrackerLogForwarder.RunAsync(logPath, firecrackerLogger, VmId, follow, stop)));
        }
        _readers = Task.WhenAll(readers);
    }

    /// <summary>
    /// A reader in the background. Its failure (the file removed under it, say) has no caller to go to: it is logged
    /// and ends that reader only; the VM is not affected.
    /// </summary>
    private async Task RunReaderAsync(string what, Func<Task> reader)
    {
        try
        {
            await Task.Run(reader).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            VmLog.ReaderFailed(_logger, e, VmId, what);
        }
    }

    /// <summary>Lets the readers finish what an ended VMM wrote (bounded), and stops them when it still runs.</summary>
    private async Task StopReadersAsync()
    {
        if (_readersStop is not { } stop)
            return;
        if (!_vmm.State.HasEnded && !_vmm.HasExited)
            await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _readers.WaitAsync(ReaderDrainTimeout, _options.TimeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The VMM's exit was not yet seen by the follower: stop it; what it missed was written after the exit.
            await stop.CancelAsync().ConfigureAwait(false);
            await _readers.ConfigureAwait(false);
        }
        stop.Dispose();
        _readersStop = null;
    }
}
