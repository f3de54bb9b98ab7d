using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln pause</c>, <c>kiln resume</c> and <c>kiln snapshot</c>.</summary>
internal static class PauseResumeCommands
{
    public static Command CreatePause(GlobalOptions globals) => Simple(globals, "pause", "Pause a VM's vCPUs.", (h, ct) => h.PauseAsync(ct));

    public static Command CreateResume(GlobalOptions globals) => Simple(globals, "resume", "Resume a paused VM.", (h, ct) => h.ResumeAsync(ct));

    private static Command Simple(GlobalOptions globals, string verb, string description, Func<FirecrackerHypervisor, CancellationToken, Task> action)
    {
        var name = CommandExtensions.NameArgument();
        return new Command(verb, description) { name }.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            await action(hypervisor, cancellationToken);
            if (context.Json)
                Output.WriteJson(new StateJson(id, hypervisor.State), CliJsonContext.Default.StateJson);
            else
                Output.WriteLine(id);
            return ExitCodes.Success;
        });
    }

    public static Command CreateSnapshot(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var leavePaused = new Option<bool>("--leave-paused") { Description = "Do not resume a VM that was running before the snapshot." };
        var diff = new Option<bool>("--diff") { Description = "A diff snapshot: only the pages written since the VM was restored with --track-dirty-pages (snapshot.diff.*)." };
        var command = new Command("snapshot", "Save a snapshot (state + memory) into the sandbox directory; a running VM is paused for it.") { name, leavePaused, diff };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            // The driver's own refusal would name Paused alone; kiln takes a Running VM too (it pauses it).
            if (hypervisor.State is not (SandboxState.Running or SandboxState.Paused))
                throw new CliFailureException($"cannot snapshot '{id}': it is {hypervisor.State}, and a snapshot needs a Running or Paused VM.");
            // Firecracker snapshots only a paused VM; pausing for the user keeps `kiln snapshot` one step.
            var wasRunning = hypervisor.State == SandboxState.Running;
            if (wasRunning)
                await hypervisor.PauseAsync(cancellationToken);
            SandboxSnapshot snapshot;
            try
            {
                snapshot = await context.Output.ProgressAsync($"Saving {id}…",
                    () => context.Value(diff) ? hypervisor.SaveDiffAsync(cancellationToken) : hypervisor.SaveAsync(cancellationToken));
            }
            catch when (wasRunning && hypervisor.State == SandboxState.Paused)
            {
                // The pause was kiln's, not the user's: a failed (or interrupted) snapshot must not leave the guest
                // frozen. Not cancellable: Ctrl-C ended the snapshot, not the wish to have the VM back.
                await hypervisor.ResumeAsync(CancellationToken.None);
                throw;
            }
            if (wasRunning && !context.Value(leavePaused))
                await hypervisor.ResumeAsync(cancellationToken);
            if (context.Json)
            {
                Output.WriteJson(new SnapshotJson(id, hypervisor.State, snapshot.StatePath, snapshot.MemoryPath), CliJsonContext.Default.SnapshotJson);
            }
            else
            {
                Output.WriteLine($"state:  {snapshot.StatePath}");
                Output.WriteLine($"memory: {snapshot.MemoryPath}");
            }
            return ExitCodes.Success;
        });
    }
}
