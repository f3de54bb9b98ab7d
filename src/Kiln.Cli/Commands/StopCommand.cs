using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln stop</c> and <c>kiln rm</c>.</summary>
internal static class StopCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var timeout = new Option<double?>("--timeout", "-t") { Description = "Seconds between SIGTERM and SIGKILL (default: the sandbox's stop timeout, set by run --stop-timeout)." };
        var force = new Option<bool>("--force", "-f") { Description = "SIGKILL now (a stop timeout of zero)." };
        timeout.Check(value => value is < 0 or > 3600 || double.IsNaN(value ?? 0) ? "--timeout must be between 0 and 3600 seconds." : null);
        var command = new Command("stop", "Stop a sandbox's VM (SIGTERM, then SIGKILL after the timeout).") { name, timeout, force };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            if (context.Value(force) && context.Value(timeout) is not null)
                throw new UsageException("--force and --timeout contradict each other: --force means a timeout of zero.");
            var grace = context.Value(force) ? TimeSpan.Zero
                : context.Value(timeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
            var state = await StopAsync(context, context.Value(name), grace, cancellationToken);
            if (context.Json)
                Output.WriteJson(new StateJson(context.Value(name), state), CliJsonContext.Default.StateJson);
            else
                Output.WriteLine(context.Value(name));
            return ExitCodes.Success;
        });
    }

    /// <summary>
    /// Stops the VMM if it runs (idempotent otherwise) and returns the resulting state. A grace period given here is
    /// this stop's alone: the sandbox's recorded stop timeout stays as it was.
    /// </summary>
    public static async Task<SandboxState> StopAsync(CommandContext context, string name, TimeSpan? grace, CancellationToken cancellationToken)
    {
        var info = await Sandboxes.GetAsync(context, name, cancellationToken);
        // An Exited sandbox (its VMM died behind Kiln's back) goes through the driver too: stopping it tidies the
        // socket Firecracker left behind and records Stopped.
        if (!Sandboxes.IsLive(info.State) && info.State is not SandboxState.Exited)
            return info.State;
        // Opened from its record, not created again: CreateAsync checks the configuration as for a new sandbox, so a
        // running sandbox whose kernel or image was deleted since could not have been stopped.
        await using var hypervisor = await Sandboxes.OpenAsync(context, info.Id, cancellationToken);
        await context.Output.ProgressAsync($"Stopping {name}…", () => hypervisor.StopAsync(grace ?? info.Config.StopTimeout, cancellationToken));
        return hypervisor.State;
    }
}

internal static class RemoveCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var force = new Option<bool>("--force", "-f") { Description = "Stop a running VM first (SIGKILL)." };
        var command = new Command("rm", "Remove a stopped sandbox and everything in its directory.") { name, force };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            var info = await Sandboxes.GetAsync(context, id, cancellationToken);
            TemplateCommands.RefuseRemovingASource(context, id, info.Directory);
            if (Sandboxes.IsLive(info.State))
            {
                if (!context.Value(force))
                    throw new CliFailureException($"sandbox '{id}' is {info.State}; stop it first ('kiln stop {id}') or use 'kiln rm --force {id}'.");
                await StopCommand.StopAsync(context, id, TimeSpan.Zero, cancellationToken);
            }
            await using (var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken))
                await hypervisor.CleanupAsync(cancellationToken);
            // Cleanup removes what the driver made; an emptied directory left behind would still hold the name.
            var directory = Path.Combine(context.Root, id);
            if (Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any())
                Directory.Delete(directory);
            if (context.Json)
                Output.WriteJson(new RemoveJson(id, true), CliJsonContext.Default.RemoveJson);
            else
                Output.WriteLine(id);
            return ExitCodes.Success;
        });
    }
}
