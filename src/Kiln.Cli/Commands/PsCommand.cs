using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln ps</c>: every sandbox under the root; a VMM that died behind Kiln's back shows as Exited. A sandbox whose
/// state file cannot be read is named on stderr and makes ps exit 1, after it listed all the others.
/// </summary>
internal static class PsCommand
{
    public static Command Create(GlobalOptions globals) =>
        new Command("ps", "List sandboxes: name, state, pid, vCPUs, memory, uptime.").WithAction(globals, async (context, cancellationToken) =>
        {
            var swept = await SweepNetworksAsync(cancellationToken);
            var scan = await SandboxCatalog.ScanAsync(context.Root, cancellationToken);
            var now = context.Time.GetUtcNow();
            var rows = scan.Sandboxes.Select(s => Sandboxes.Summary(s, now)).OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
            var exitCode = Math.Max(ReportUnreadable(scan.Unreadable), swept);
            if (context.Json)
            {
                Output.WriteJson<IReadOnlyList<SandboxSummaryJson>>(rows, CliJsonContext.Default.IReadOnlyListSandboxSummaryJson);
                return exitCode;
            }
            var table = Output.NewTable("NAME", "STATE", "PID", "VCPUS", "MEMORY", "UPTIME");
            foreach (var row in rows)
            {
                table.AddRow(
                    Markup.Escape(row.Name), StateMarkup(row.State), row.Pid?.ToString() ?? "-", row.Vcpus.ToString(),
                    $"{row.MemoryMiB} MiB", Output.Uptime(row.UptimeSeconds));
            }
            Output.Write(table);
            return exitCode;
        });

    /// <summary>
    /// ps looks at every sandbox, so it is where a dead VMM is most often noticed: the networks whose owner is gone
    /// (namespace, TAP, veth, nftables chains, in any state root) are removed now. Networks are root's: others skip
    /// this. A network that cannot be removed is named on stderr and makes ps exit 1, after the listing.
    /// </summary>
    private static async Task<int> SweepNetworksAsync(CancellationToken cancellationToken)
    {
        if (!Environment.IsPrivilegedProcess)
            return ExitCodes.Success;
        var networks = new Kiln.Host.Network.SandboxNetworks();
        var exitCode = ExitCodes.Success;
        foreach (var network in networks.List())
        {
            try
            {
                await networks.SweepAsync(network.SandboxId, cancellationToken);
            }
            catch (Kiln.Host.Network.NetworkException e)
            {
                Console.Error.WriteLine($"kiln: the network of sandbox '{network.SandboxId}', whose VMM is gone, could not be removed: {e.Message}");
                exitCode = ExitCodes.Failure;
            }
        }
        return exitCode;
    }

    /// <summary>One line each on stderr (also with --json, whose stdout stays the readable sandboxes' array).</summary>
    private static int ReportUnreadable(IReadOnlyList<UnreadableSandbox> unreadable)
    {
        foreach (var bad in unreadable)
            Console.Error.WriteLine($"kiln: sandbox '{bad.Id}' cannot be read: {bad.Error.Message}");
        return unreadable.Count == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }

    public static string StateMarkup(SandboxState state) => state switch
    {
        SandboxState.Running => "[green]Running[/]",
        SandboxState.Paused => "[yellow]Paused[/]",
        SandboxState.Exited => "[red]Exited[/]",
        _ => state.ToString(),
    };
}
