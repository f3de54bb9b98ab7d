using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Kiln.Vm.Templates;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln template create|ls|rm</c>: templates live in <c>ROOT/.templates</c> (no sandbox name starts with '.').</summary>
internal static class TemplateCommands
{
    public static Command Create(GlobalOptions globals)
    {
        var command = new Command("template", "Make, list and remove templates (a snapshot plus the machine it was taken from).");
        command.Subcommands.Add(CreateCreate(globals));
        command.Subcommands.Add(CreateList(globals));
        command.Subcommands.Add(CreateRemove(globals));
        return command;
    }

    internal static TemplateStore Store(CommandContext context) => new(Path.Combine(context.Root, ".templates"));

    /// <summary>
    /// Refuses to remove a sandbox a template was made from while the template needs it: the snapshot recorded the
    /// paths of its writable drives (the block pool's placeholders live in the sandbox directory), and every clone binds
    /// its own copy over those paths, which must therefore exist.
    /// </summary>
    /// <exception cref="CliFailureException">A template's drive was recorded inside <paramref name="directory"/>.</exception>
    internal static void RefuseRemovingASource(CommandContext context, string id, string directory)
    {
        var inside = Path.GetFullPath(directory).TrimEnd('/') + "/";
        var users = Store(context).List()
            .Where(t => t.Manifest.Drives.Any(d => !d.IsReadOnly && d.RecordedPath.StartsWith(inside, StringComparison.Ordinal)))
            .Select(t => t.Name)
            .ToList();
        if (users.Count > 0)
        {
            throw new CliFailureException(
                $"sandbox '{id}' holds drive files that template{(users.Count == 1 ? "" : "s")} {string.Join(", ", users.Select(u => $"'{u}'"))} " +
                $"clone{(users.Count == 1 ? "s" : "")} from (a snapshot records its drives' paths); remove the template first ('kiln template rm {users[0]}'). Stopping it is fine.");
        }
    }

    private static Argument<string> TemplateArgument()
    {
        var argument = new Argument<string>("template") { Description = "The template name." };
        argument.Check(n => TemplateStore.IsValidName(n) ? null : $"'{n}' is not a template name (1 to 64 letters, digits, '-' and '_', not starting with '-').");
        return argument;
    }

    private static Command CreateCreate(GlobalOptions globals)
    {
        var template = TemplateArgument();
        var from = new Option<string>("--from") { Description = "The sandbox to snapshot (Running or Paused; a running one is paused for it, then resumed).", Required = true };
        return new Command("create", "Make a template from a running or paused sandbox.") { template, from }.WithAction(globals, async (context, cancellationToken) =>
        {
            var name = context.Value(template);
            var id = context.Value(from)!;
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            if (hypervisor.State is not (SandboxState.Running or SandboxState.Paused) || hypervisor.Vm is not { } vm)
                throw new CliFailureException($"cannot make a template of '{id}': it is {hypervisor.State}, and a template needs a Running or Paused VM.");
            // Paused through the driver so its state file says so; the template keeps a Paused source paused.
            var wasRunning = hypervisor.State == SandboxState.Running;
            if (wasRunning)
                await hypervisor.PauseAsync(cancellationToken);
            MicrovmTemplate made;
            try
            {
                made = await context.Output.ProgressAsync($"Making template {name} from {id}…", () => Store(context).CreateAsync(name, vm, cancellationToken));
            }
            finally
            {
                if (wasRunning)
                    await hypervisor.ResumeAsync(CancellationToken.None);
            }
            Write(context, [made], single: true);
            return ExitCodes.Success;
        });
    }

    private static Command CreateList(GlobalOptions globals) =>
        new Command("ls", "List templates.").WithAction(globals, (context, _) =>
        {
            Write(context, Store(context).List(), single: false);
            return Task.FromResult(ExitCodes.Success);
        });

    private static Command CreateRemove(GlobalOptions globals)
    {
        var template = TemplateArgument();
        return new Command("rm", "Remove a template (clones already running keep running).") { template }.WithAction(globals, (context, _) =>
        {
            var name = context.Value(template);
            if (!Store(context).Delete(name))
                throw new CliFailureException($"no template '{name}'.");
            if (context.Json)
                Output.WriteJson(new TemplateRemoveJson(name, true), CliJsonContext.Default.TemplateRemoveJson);
            else
                Output.WriteLine(name);
            return Task.FromResult(ExitCodes.Success);
        });
    }

    private static void Write(CommandContext context, IReadOnlyList<MicrovmTemplate> templates, bool single)
    {
        var json = templates.Select(t => new TemplateJson(t.Name, t.Directory, t.Manifest.FirecrackerVersion, t.Manifest.CreatedAt,
            t.Manifest.VcpuCount, t.Manifest.MemSizeMib, [.. t.Manifest.Drives.Select(d => d.IsReadOnly ? d.DriveId + ":ro" : d.DriveId)])).ToList();
        if (context.Json)
        {
            if (single)
                Output.WriteJson(json[0], CliJsonContext.Default.TemplateJson);
            else
                Output.WriteJson<IReadOnlyList<TemplateJson>>(json, CliJsonContext.Default.IReadOnlyListTemplateJson);
            return;
        }
        if (single)
        {
            Output.WriteLine(json[0].Name);
            return;
        }
        Output.WriteLine($"{"NAME",-24} {"FIRECRACKER",-12} {"VCPUS",5} {"MEMORY",8}  DRIVES");
        foreach (var t in json)
            Output.WriteLine($"{t.Name,-24} {t.FirecrackerVersion,-12} {t.VcpuCount,5} {t.MemSizeMib + " MiB",8}  {string.Join(",", t.Drives)}");
    }
}
