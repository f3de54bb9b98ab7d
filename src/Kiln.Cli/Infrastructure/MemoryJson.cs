// The shapes `kiln mem --json` and `kiln stats --json` print (part of the CLI's JSON contract, see README.md).
using System.Text.Json;

namespace Kiln.Cli.Infrastructure;

/// <summary>A guest's memory as its devices report it; the balloon fields are null without a balloon.</summary>
internal sealed record GuestMemoryJson(
    int GuestMiB, int BootMiB, int PluggedMiB, int? RequestedPlugMiB, int? BalloonTargetMiB, int? BalloonActualMiB, bool Settled)
{
    public static GuestMemoryJson From(Kiln.Vm.GuestMemory m) =>
        new(m.GuestMib, m.BootMib, m.PluggedMib, m.RequestedPlugMib, m.BalloonTargetMib, m.BalloonActualMib, m.Settled);
}

/// <summary><c>kiln mem</c>: what was asked, which device made the change, and what the guest has now.</summary>
internal sealed record MemJson(string Name, int RequestedMiB, string Mechanism, GuestMemoryJson Memory);

/// <summary>
/// <c>kiln stats</c>: the guest's memory, the balloon's statistics as Firecracker answers them (snake_case, verbatim;
/// null without a balloon or with its statistics off) and Firecracker's latest metrics line (path → value; null
/// when the sandbox runs without <c>--metrics</c>).
/// </summary>
internal sealed record StatsJson(
    string Name, GuestMemoryJson Memory, JsonElement? Balloon, string? BalloonNote, long? MetricsTimestampMs,
    IReadOnlyDictionary<string, ulong>? Metrics, string? MetricsNote);
