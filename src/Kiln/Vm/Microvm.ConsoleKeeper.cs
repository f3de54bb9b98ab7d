// Restarting a detached VM's console keeper. The keeper is a process of its own beside the VMM; if it dies (SIGKILL,
// the OOM killer) the VMM lives on, still holding the keeper's FIFO read-write, and its serial output fails with
// EAGAIN once the FIFO is full: the log stops. A new keeper opens the same FIFO (the VMM's holding it keeps it and the
// bytes buffered in it), so whatever needs the console next (kiln logs, kiln attach, a library caller) starts one
// first, here. Explicit, not a side effect of re-attaching: a restart that fails throws to the caller who asked for
// the console, instead of being logged and ignored where nobody asked.
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>
    /// Starts this VM's console keeper again when it was started with one (<see cref="MicrovmOptions.ConsoleKeeper"/>)
    /// and the keeper has died while the VMM runs. The new keeper takes over the same FIFO, log and socket, and is
    /// then <see cref="ConsoleKeeper"/> (record it to re-attach later). Returns whether one was started: false when the
    /// keeper runs, or the VMM never had one (an owned VMM, or a detached one that writes its console file itself).
    /// </summary>
    /// <exception cref="MicrovmStateException">The VMM has ended (neither Running nor Paused).</exception>
    /// <exception cref="ConsoleKeeperRestartException">The keeper could not be started again: no keeper command in the
    /// options, the FIFO is gone, or the new keeper failed or was not ready in time (its own error in the message).</exception>
    public async Task<bool> RestartConsoleKeeperAsync(CancellationToken cancellationToken = default)
    {
        var restarted = false;
        await LockedAsync("restart the console keeper", "console-keeper.restart", [MicrovmState.Running, MicrovmState.Paused], async ct =>
        {
            if (_vmm.ConsoleKeeper is not { } recorded || Kiln.Vmm.ConsoleKeeper.IsRunning(recorded))
                return;
            var command = _options.ConsoleKeeper
                ?? throw new ConsoleKeeperRestartException($"The console keeper of {VmId} (PID {recorded.Pid}) has died, and these options name no ConsoleKeeper command to start another.");
            var fifo = Kiln.Vmm.ConsoleKeeper.FifoPath(_options.ConsolePath);
            // The VMM holds it open; a FIFO removed from its directory cannot be opened again by anyone.
            if (!Kiln.Interop.FileNodes.IsFifo(fifo))
                throw new ConsoleKeeperRestartException($"The console keeper of {VmId} has died and its FIFO {fifo} is gone: the VMM's output cannot be read again until it restarts.");
            var input = _options.ConsoleInputPath is { } inputPath && Kiln.Interop.FileNodes.IsFifo(inputPath) ? inputPath : null;
            // A jailed VMM launched here may be the jailer's process, which exec'd firecracker: the record has the real one.
            var vmm = _jail?.Record.Identity ?? _vmm.Identity;
            try
            {
                _vmm.ConsoleKeeper = await Kiln.Vmm.ConsoleKeeper.LaunchAsync(command, vmm, _options.ConsolePath, _options.ConsoleRotation,
                    input, _options.WorkingDirectory, _options.TimeProvider, ct).ConfigureAwait(false);
            }
            catch (VmmLaunchException e)
            {
                throw new ConsoleKeeperRestartException($"The console keeper of {VmId} has died and could not be started again: {e.Message}", e);
            }
            VmLog.ConsoleKeeperRestarted(_logger, VmId, recorded.Pid, _vmm.ConsoleKeeper.Pid);
            restarted = true;
        }, cancellationToken).ConfigureAwait(false);
        return restarted;
    }

    /// <summary>Takes note of a keeper another process started for this VMM (its record says so), so that the VMM's
    /// end waits for that keeper's.</summary>
    internal void ObserveConsoleKeeper(Kiln.Host.ProcessIdentity keeper) => _vmm.ConsoleKeeper = keeper;
}
