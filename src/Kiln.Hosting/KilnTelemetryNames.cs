using Kiln.Vmm.Telemetry;

namespace Kiln.Hosting;

/// <summary>
/// The names to give OpenTelemetry: <c>.WithMetrics(m =&gt; m.AddMeter(KilnTelemetryNames.Meters))</c> and
/// <c>.WithTracing(t =&gt; t.AddSource(KilnTelemetryNames.ActivitySource))</c>.
/// </summary>
public static class KilnTelemetryNames
{
    /// <summary>Kiln's spans (a boot and each of its steps).</summary>
    public const string ActivitySource = KilnTelemetry.Name;

    /// <summary>Kiln's own meter and the meter of Firecracker's metrics.</summary>
    public static IReadOnlyList<string> Meters { get; } = [KilnTelemetry.Name, FirecrackerTelemetry.MeterName];

    /// <summary>The logger category of Firecracker's own log lines.</summary>
    public const string FirecrackerLogCategory = FirecrackerLogForwarder.Category;
}
