using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kiln;

/// <summary>Kiln's traces and metrics: <c>ActivitySource("Kiln")</c> and <c>Meter("Kiln")</c>.</summary>
public static class KilnTelemetry
{
    /// <summary>The name of Kiln's activity source and meter.</summary>
    public const string Name = "Kiln";

    /// <summary>
    /// Spans: one per sandbox start or restore and per step of it (<c>kiln.sandbox.start.rootfs</c>,
    /// <c>kiln.vm.restore.snapshot-load</c>), and one per operation on a running microVM (<c>kiln.vm.pause</c>,
    /// <c>kiln.vm.snapshot.create</c>, <c>kiln.vm.drive.update</c>, …).
    /// </summary>
    public static ActivitySource ActivitySource { get; } = new(Name, KilnInfo.Version);

    /// <summary>Kiln's meter.</summary>
    public static Meter Meter { get; } = new(Name, KilnInfo.Version);

    /// <summary>Spawn → Running, in milliseconds, of successful starts.</summary>
    public static Histogram<double> StartDuration { get; } =
        Meter.CreateHistogram<double>("kiln.sandbox.start.duration", "ms", "Time from spawning firecracker to the VM running.");

    /// <summary>Starts attempted.</summary>
    public static Counter<long> Starts { get; } = Meter.CreateCounter<long>("kiln.sandbox.starts", description: "Sandbox starts attempted.");

    /// <summary>Starts that failed (tagged with the step).</summary>
    public static Counter<long> StartFailures { get; } = Meter.CreateCounter<long>("kiln.sandbox.start.failures", description: "Sandbox starts that failed.");

    /// <summary>Template sandbox starts by what the VM cache did: <c>result</c> = hit, miss or bypass.</summary>
    public static Counter<long> VmCacheTakes { get; } =
        Meter.CreateCounter<long>("kiln.sandbox.vm_cache.takes", description: "Template sandbox starts by the VM cache's answer (hit, miss, bypass).");
}
