// The two waits of a boot: the API answering, and the VM Running. Each is woken by what it waits for (the shared
// inotify watcher, on the socket's creation; the answer), races the VMM's exit, and is bounded by a deadline on the
// given clock.
using Kiln.Api;
using Kiln.Vmm;

namespace Kiln.Vm;

internal static class Readiness
{
    /// <summary>The longest pause between two probes that found the socket but no listener (or not yet Running).</summary>
    private static readonly TimeSpan MaxProbeBackoff = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Until GET / answers, on the connection the wait opened: for the config-file boot, whose VMM may bind its socket
    /// and then die of a document it cannot apply, a death that belongs to this step.
    /// </summary>
    public static Task WaitForApiAsync(VmmProcess vmm, FirecrackerClient client, string socketPath, TimeSpan timeout, TimeProvider time,
        CancellationToken cancellationToken) =>
        WaitForSocketAsync(vmm, client, describe: true, socketPath, timeout, time, cancellationToken);

    /// <summary>
    /// Until the API socket accepts a connection, which the client keeps for its next request: for a caller whose
    /// first request needs no probe before it (an API boot's machine-config, a restore's load). Firecracker's listener
    /// binds and listens in one call and queues connections until its API thread serves them, so a connect that
    /// succeeds is as good as an answer to GET / and costs no round trip (nor, for the stand-in, a first request's JIT).
    /// </summary>
    public static Task WaitForListenerAsync(VmmProcess vmm, FirecrackerClient client, string socketPath, TimeSpan timeout, TimeProvider time,
        CancellationToken cancellationToken) =>
        WaitForSocketAsync(vmm, client, describe: false, socketPath, timeout, time, cancellationToken);

    /// <summary>
    /// Connects; while the socket is missing, waits for its creation (one shared inotify watch); while it exists but
    /// refuses (bound, not yet listening), retries after a short growing pause. Each wait races the VMM's exit.
    /// </summary>
    private static async Task WaitForSocketAsync(VmmProcess vmm, FirecrackerClient client, bool describe, string socketPath,
        TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var backoff = TimeSpan.FromMilliseconds(0.5);
        try
        {
            while (true)
            {
                var connected = false;
                try
                {
                    connected = await client.TryConnectAsync(linked.Token).ConfigureAwait(false);
                    if (connected && describe)
                        await client.DescribeInstanceAsync(linked.Token).ConfigureAwait(false);
                }
                catch (FirecrackerConnectionException) when (!linked.IsCancellationRequested)
                {
                    // Closed or refused because the process is gone (a --config-file it could not apply, say): its
                    // exit is the cause. Otherwise the answer may come on a new connection.
                    connected = false;
                }
                if (connected)
                    return;
                if (vmm.State.HasEnded || vmm.HasExited)
                    throw new VmmExitedException(await vmm.Exited.WaitAsync(cancellationToken).ConfigureAwait(false), "waiting for its API socket");

                Task wake;
                if (File.Exists(socketPath))
                {
                    wake = Task.Delay(backoff, time, linked.Token);
                    backoff = Grow(backoff);
                }
                else
                {
                    wake = Kiln.Interop.FileCreationWatcher.WaitAsync(socketPath, linked.Token);
                }
                await Task.WhenAny(wake, vmm.Exited).ConfigureAwait(false);
                if (vmm.Exited.IsCompleted)
                {
                    // The wait may still be registered: end it rather than leave it to a socket that never comes.
                    await linked.CancelAsync().ConfigureAwait(false);
                    throw new VmmExitedException(await vmm.Exited.ConfigureAwait(false), "waiting for its API socket");
                }
                await wake.ConfigureAwait(false); // cancelled, past the deadline, or the socket's directory gone: throws
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"firecracker's API did not answer within {timeout.TotalSeconds:0.###} s");
        }
    }

    /// <summary>Until GET / says Running.</summary>
    public static async Task WaitForRunningAsync(VmmProcess vmm, FirecrackerClient client, TimeSpan timeout, TimeProvider time,
        CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var backoff = TimeSpan.FromMilliseconds(0.5);
        try
        {
            while (true)
            {
                var info = await client.DescribeInstanceAsync(linked.Token).ConfigureAwait(false);
                if (info.State == InstanceState.Running)
                    return;
                await Task.WhenAny(Task.Delay(backoff, time, linked.Token), vmm.Exited).ConfigureAwait(false);
                if (vmm.Exited.IsCompleted)
                    throw new VmmExitedException(await vmm.Exited.ConfigureAwait(false), "waiting for the VM to run");
                linked.Token.ThrowIfCancellationRequested();
                backoff = Grow(backoff);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the VM did not reach Running within {timeout.TotalSeconds:0.###} s");
        }
    }

    private static TimeSpan Grow(TimeSpan backoff) => backoff * 2 < MaxProbeBackoff ? backoff * 2 : MaxProbeBackoff;
}
