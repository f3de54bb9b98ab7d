using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln ps</c>: every sandbox under the root; a VMM that died behind Kiln's back shows as Exited.</summary>
internal static class PsCommand
{
    public static Command Create(GlobalOptions globals) =>
        new Command("ps", "List sandboxes: name, state, pid, vCPUs, memory, uptime.").WithAction(globals, async (context, cancellationToken) =>
        {
            IReadOnlyList<SandboxInfo> sandboxes = Directory.Exists(context.Root)
                ? await SandboxCatalog.ListAsync(context.Root, cancellationToken)
                : [];
            var now = context.Time.GetUtcNow();
            var rows = sandboxes.Select(s => Sandboxes.Summary(s, now)).OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
            if (context.Json)
            {
                Output.WriteJson<IReadOnlyList<SandboxSummaryJson>>(rows, CliJsonContext.Default.IReadOnlyListSandboxSummaryJson);
                return ExitCodes.Success;
            }
            var table = Output.NewTable("NAME", "STATE", "PID", "VCPUS", "MEMORY", "UPTIME");
            foreach (var row in rows)
            {
                table.AddRow(
                    Markup.Escape(row.Name), StateMarkup(row.State), row.Pid?.ToString() ?? "-", row.Vcpus.ToString(),
                    $"{row.MemoryMiB} MiB", Output.Uptime(row.UptimeSeconds));
            }
            Output.Write(table);
            return ExitCodes.Success;
        });

    public static string StateMarkup(SandboxState state) => state switch
    {
        SandboxState.Running => "[green]Running[/]",
        SandboxState.Paused => "[yellow]Paused[/]",
        SandboxState.Exited => "[red]Exited[/]",
        _ => state.ToString(),
    };
}
