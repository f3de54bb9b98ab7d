// The two waits of a boot: the API answering, and the VM Running. Each is woken by what it waits for (inotify on
// the socket's creation; the answer), races the VMM's exit, and is bounded by a deadline on the given clock.
using Kiln.Api;
using Kiln.Vmm;

namespace Kiln.Vm;

internal static class Readiness
{
    /// <summary>The longest pause between two probes that found the socket but no listener (or not yet Running).</summary>
    private static readonly TimeSpan MaxProbeBackoff = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Until GET / answers. Only when the socket exists but refuses (bound, not yet listening) is there a retry,
    /// after a short growing pause; otherwise the wait is for the socket's creation.
    /// </summary>
    public static Task WaitForApiAsync(VmmProcess vmm, FirecrackerClient client, string socketPath, SemaphoreSlim socketAppeared,
        TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken) =>
        WaitForSocketAsync(vmm, ct => client.DescribeInstanceAsync(ct), socketPath, socketAppeared, timeout, time, cancellationToken);

    /// <summary>
    /// Until the API socket accepts a connection, which the client keeps for its next request: for a caller whose
    /// first request needs no probe before it (a restore's load). Firecracker's listener binds and listens in one
    /// call and queues connections until its API thread serves them, so a connect that succeeds is as good as an
    /// answer to GET / and costs no round trip (nor, for the stand-in, a first request's JIT).
    /// </summary>
    public static Task WaitForListenerAsync(VmmProcess vmm, FirecrackerClient client, string socketPath, SemaphoreSlim socketAppeared,
        TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken) =>
        WaitForSocketAsync(vmm, client.ConnectAsync, socketPath, socketAppeared, timeout, time, cancellationToken);

    private static async Task WaitForSocketAsync(VmmProcess vmm, Func<CancellationToken, Task> probe, string socketPath,
        SemaphoreSlim socketAppeared, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var backoff = TimeSpan.FromMilliseconds(0.5);
        while (true)
        {
            Task wake;
            if (File.Exists(socketPath))
            {
                try
                {
                    await probe(linked.Token).ConfigureAwait(false);
                    return;
                }
                catch (FirecrackerConnectionException) when (!linked.IsCancellationRequested)
                {
                    // Refused because the process is gone (a --config-file it could not apply, say): its exit is the cause.
                    if (vmm.State.HasEnded || vmm.HasExited)
                        throw new VmmExitedException(await vmm.Exited.WaitAsync(cancellationToken).ConfigureAwait(false), "waiting for its API socket");
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"firecracker's API did not answer within {timeout.TotalSeconds:0.###} s");
                }
                wake = Task.Delay(backoff, time, linked.Token);
                backoff = Grow(backoff);
            }
            else
            {
                wake = socketAppeared.WaitAsync(linked.Token);
            }
            await Task.WhenAny(wake, vmm.Exited).ConfigureAwait(false);
            if (vmm.Exited.IsCompleted)
                throw new VmmExitedException(await vmm.Exited.ConfigureAwait(false), "waiting for its API socket");
            cancellationToken.ThrowIfCancellationRequested();
            if (deadline.IsCancellationRequested)
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
