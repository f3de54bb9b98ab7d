using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Api;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Kiln.Vm;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln mem NAME SIZE</c> (give the guest SIZE of memory: virtio-mem above its boot memory, the balloon below it)
/// and <c>kiln stats NAME</c> (its memory, balloon statistics and Firecracker's metrics).
/// </summary>
internal static partial class MemoryCommands
{
    public static Command CreateMem(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var size = new Argument<string>("size") { Description = "The guest memory wanted: MiB, or with a unit (512M, 1G)." };
        var command = new Command("mem", "Resize a running VM's memory: above its boot memory through memory hot-plug (--memory-hotplug), below it through the balloon (--balloon).") { name, size };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            var mib = ParseSize(context.Value(size));
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            _ = RequireRunning(hypervisor, id, "resize the memory of");
            // Through the driver, which records what the guest then has (kiln ps shows it).
            var outcome = await context.Output.ProgressAsync($"Resizing {id} to {mib} MiB…", () => hypervisor.ResizeGuestMemoryAsync(mib, cancellationToken));
            var result = new MemJson(id, mib, MechanismName(outcome.Mechanism), GuestMemoryJson.From(outcome.Memory));
            if (context.Json)
            {
                Output.WriteJson(result, CliJsonContext.Default.MemJson);
                return ExitCodes.Success;
            }
            Output.WriteLine($"{id}: {Describe(outcome.Memory)} (through {result.Mechanism})");
            if (!outcome.Memory.Settled)
                context.Output.Note($"the guest has not moved all of it yet: asked for {mib} MiB; 'kiln stats {id}' shows where it is.");
            return ExitCodes.Success;
        });
    }

    public static Command CreateStats(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var command = new Command("stats", "Show a running VM's memory, its balloon statistics and Firecracker's metrics (with 'kiln run --metrics').") { name };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            var vm = RequireRunning(hypervisor, id, "read the statistics of", allowPaused: true);
            var memory = await vm.GetMemoryAsync(cancellationToken);
            var config = await vm.Client.GetExportVmConfigAsync(cancellationToken);
            JsonElement? balloon = null;
            string? balloonNote = null;
            if (config.Balloon is null)
                balloonNote = "no balloon (kiln run --balloon)";
            else if (config.Balloon.StatsPollingIntervalS is not > 0)
                balloonNote = "the balloon's statistics are off";
            else
                balloon = JsonSerializer.SerializeToElement(await vm.GetBalloonStatisticsAsync(cancellationToken), FirecrackerJsonContext.Default.BalloonStats);
            MetricsSnapshot? metrics = null;
            string? metricsNote = null;
            if (hypervisor.MetricsPath is { } fifo)
                metrics = await MetricsSnapshot.ReadAsync(vm, fifo, cancellationToken);
            else
                metricsNote = "Firecracker's metrics are off (kiln run --metrics)";
            var result = new StatsJson(id, GuestMemoryJson.From(memory), balloon, balloonNote, metrics?.TimestampMs, metrics?.Values, metricsNote);
            if (context.Json)
            {
                Output.WriteJson(result, CliJsonContext.Default.StatsJson);
                return ExitCodes.Success;
            }
            WriteStats(result, memory);
            return ExitCodes.Success;
        });
    }

    private static void WriteStats(StatsJson r, GuestMemory memory)
    {
        Output.WriteLine($"{r.Name}: {Describe(memory)}");
        Output.Section("Balloon statistics");
        if (r.Balloon is { } balloon)
        {
            var table = Output.NewTable("FIELD", "VALUE");
            foreach (var field in balloon.EnumerateObject())
                table.AddRow(Markup.Escape(field.Name), Markup.Escape(field.Value.ToString()));
            Output.Write(table);
        }
        else
        {
            Output.WriteLine(r.BalloonNote!);
        }
        Output.Section("Firecracker metrics (non-zero)");
        if (r.Metrics is { } metrics)
        {
            var table = Output.NewTable("METRIC", "VALUE");
            foreach (var (path, value) in metrics.Where(m => m.Value != 0).OrderBy(m => m.Key, StringComparer.Ordinal))
                table.AddRow(Markup.Escape(path), value.ToString(CultureInfo.InvariantCulture));
            Output.Write(table);
            Output.WriteLine($"{metrics.Count(m => m.Value == 0)} more are 0; counters count since Firecracker's previous metrics line.");
        }
        else
        {
            Output.WriteLine(r.MetricsNote!);
        }
    }

    private static string Describe(GuestMemory m)
    {
        var parts = new List<string> { $"boot {m.BootMib} MiB" };
        if (m.RequestedPlugMib is not null)
            parts.Add($"plugged {m.PluggedMib} MiB");
        if (m.BalloonTargetMib is { } target)
            parts.Add(m.BalloonActualMib is { } actual ? $"balloon {actual} of {target} MiB" : $"balloon {target} MiB");
        return $"{m.GuestMib} MiB ({string.Join(", ", parts)})";
    }

    private static string MechanismName(MemoryResizeMechanism mechanism) => mechanism switch
    {
        MemoryResizeMechanism.VirtioMem => "virtio-mem",
        MemoryResizeMechanism.Balloon => "balloon",
        _ => mechanism.ToString(),
    };

    private static Microvm RequireRunning(FirecrackerHypervisor hypervisor, string id, string verb, bool allowPaused = false)
    {
        var state = hypervisor.State;
        if ((state == SandboxState.Running || (allowPaused && state == SandboxState.Paused)) && hypervisor.Vm is { } vm)
            return vm;
        throw new CliFailureException($"cannot {verb} '{id}': it is {state}; it needs a {(allowPaused ? "Running or Paused" : "Running")} VM.");
    }

    /// <summary>MiB: a number, or a number with M/MiB/G/GiB.</summary>
    /// <exception cref="UsageException">Anything else, or a size of 0 or over int.MaxValue MiB.</exception>
    internal static int ParseSize(string text)
    {
        var match = SizePattern().Match(text.Trim());
        if (!match.Success || !long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
            throw new UsageException($"size '{text}' is not a memory size: give MiB (512) or a unit (512M, 1G).");
        var mib = match.Groups[2].Value.StartsWith('G') || match.Groups[2].Value.StartsWith('g') ? amount * 1024 : amount;
        if (mib is < 1 or > int.MaxValue)
            throw new UsageException($"size '{text}' is out of range: 1 MiB to {int.MaxValue} MiB.");
        return (int)mib;
    }

    [GeneratedRegex(@"^(\d{1,12})\s*(M|MiB|MB|G|GiB|GB)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SizePattern();
}
