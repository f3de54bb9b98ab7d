// A sandbox network lives as long as its VMM (the network's recorded owner once the VMM runs). When the VMM dies
// without a stop — killed, crashed, or its owner killed and the VMM with it — its namespace, TAP, veth and nftables
// chains would otherwise stay until the next start. So whoever notices first removes them: this driver's exit watcher,
// a driver re-attaching (OpenAsync, CreateAsync) to a sandbox whose VMM is gone, kiln ps. The sweep looks at the
// owner under the network state lock, so a network that another process is setting up (owned by that live process)
// is never taken.
using Kiln.Host.Network;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    private volatile Task _networkSweep = Task.CompletedTask;

    /// <summary>
    /// Removes the sandbox's network if the process that owns it (its VMM, or the Kiln that was starting it) is gone;
    /// true when it did. A no-op without a network or while its owner lives.
    /// </summary>
    /// <exception cref="HostCommandException">A host tool failed; the network's record stays so that a retry finishes the job.</exception>
    public async Task<bool> SweepNetworkAsync(CancellationToken cancellationToken = default)
    {
        if (SandboxId is null || Config.Network is not { Mode: not NetworkMode.None })
            return false;
        if (!await Networks.SweepAsync(Id, cancellationToken).ConfigureAwait(false))
            return false;
        Log.NetworkSwept(_logger, Id);
        return true;
    }

    /// <summary>Re-attached to a sandbox whose VMM is gone: its network goes now rather than at the next start.</summary>
    private Task SweepIfNoVmmAsync(CancellationToken cancellationToken) =>
        _vm is null ? SweepNetworkAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>
    /// From the exit watcher, which has no caller to throw to: the failure is logged, and the next one to notice (a
    /// start, a stop, kiln ps) tries again. DisposeAsync waits for it, so no host tool outlives the driver.
    /// </summary>
    private void SweepNetworkAfterExit()
    {
        if (Config.Network is not { Mode: not NetworkMode.None })
            return;
        var previous = _networkSweep;
        _networkSweep = Task.Run(async () =>
        {
            await previous.ConfigureAwait(false);
            try
            {
                await SweepNetworkAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (NetworkException e)
            {
                Log.NetworkSweepFailed(_logger, e, Id);
            }
        });
    }
}
