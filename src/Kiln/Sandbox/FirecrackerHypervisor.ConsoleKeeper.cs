// A detached sandbox's console keeper started again after it died (Microvm.RestartConsoleKeeperAsync), under the
// sandbox lock, and the new keeper recorded in state.json so that every later driver waits for it and reports it.
namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>
    /// Starts the sandbox's console keeper again when it had one and it died while the VMM runs (see
    /// <see cref="Kiln.Vm.Microvm.RestartConsoleKeeperAsync"/>); the new keeper is recorded. Returns whether one was
    /// started. What needs the console (its log kept bounded, an attach) calls this first.
    /// </summary>
    /// <exception cref="SandboxStateException">Neither Running nor Paused.</exception>
    /// <exception cref="Kiln.Vm.ConsoleKeeperRestartException">The keeper could not be started again.</exception>
    /// <exception cref="SandboxException">The new keeper runs but could not be recorded (a full or read-only disk).</exception>
    public async Task<bool> RestartConsoleKeeperAsync(CancellationToken cancellationToken = default)
    {
        var restarted = false;
        await LockedAsync(async ct =>
        {
            RequireState("restart the console keeper", SandboxState.Running, SandboxState.Paused);
            restarted = await RequireVm().RestartConsoleKeeperAsync(ct).ConfigureAwait(false);
            if (restarted)
                await PersistAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        return restarted;
    }
}
