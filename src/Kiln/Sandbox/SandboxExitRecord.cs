// A VMM that dies on its own (the guest panicked, an OOM kill, a SIGKILL from outside) leaves state.json saying
// Running. Whoever notices first — the owner's exit watcher, kiln ps/inspect, a driver re-attaching — makes the record
// say what happened: Exited, with the exit status when it is known (only the VMM's parent learns it). The record is
// changed only under the sandbox lock and only if it still names that very VMM (PID + start time) as live, so a
// driver that meanwhile stopped it, or started a new one, is never overwritten.
using Kiln.Host;
using Kiln.Vmm;

namespace Kiln.Sandbox;

internal static class SandboxExitRecord
{
    /// <summary>
    /// Records the VMM <paramref name="identity"/> as Exited with <paramref name="status"/> (null: unknown) if the
    /// record still says it runs and it does not. With <paramref name="wait"/> false, a sandbox whose lock another
    /// driver holds is left alone (that driver is at work on it and writes its own record). True when it wrote.
    /// </summary>
    /// <exception cref="SandboxException">The lock could not be taken or the record not read or written.</exception>
    public static async Task<bool> MarkExitedAsync(SandboxPaths paths, string sandboxId, ProcessIdentity identity, VmmProcessState? status,
        bool wait, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(paths.Directory))
            return false;
        using var held = wait
            ? await SandboxLock.AcquireAsync(paths.Directory, sandboxId, timeout, time, cancellationToken).ConfigureAwait(false)
            : SandboxLock.TryAcquire(paths.Directory, sandboxId);
        if (held is null)
            return false;
        var record = await SandboxStateFile.TryReadAsync(paths.StatePath, cancellationToken).ConfigureAwait(false);
        if (record is not { State: SandboxState.Starting or SandboxState.Running or SandboxState.Paused }
            || record.Pid != identity.Pid || record.StartTimeTicks != identity.StartTimeTicks
            || SandboxCatalog.IsAlive(record))
        {
            return false;
        }
        await (record with
        {
            State = SandboxState.Exited,
            ExitCode = (status as VmmProcessState.Exited)?.Code,
            ExitSignal = (status as VmmProcessState.Crashed)?.Signal,
        }).WriteAsync(paths.StatePath, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// From a reader (kiln ps, inspect): corrects a record whose VMM is gone, if no driver is at work on the sandbox.
    /// The reader's own answer is already right (it checks the VMM's identity), so a record that cannot be written
    /// (a read-only file system, a sandbox of another user) stays as it is for the next one to notice.
    /// </summary>
    public static async Task TryCorrectAsync(string root, SandboxStateFile record, CancellationToken cancellationToken)
    {
        if (record.Pid is not { } pid || record.StartTimeTicks is not { } ticks)
            return;
        try
        {
            await MarkExitedAsync(SandboxPaths.For(root, record.Id), record.Id, new ProcessIdentity(pid, ticks, record.ExecutablePath), status: null,
                wait: false, TimeSpan.Zero, TimeProvider.System, cancellationToken).ConfigureAwait(false);
        }
        catch (SandboxException)
        {
            // Not this reader's to fix (see above): the listing it is making is still right.
        }
    }
}
