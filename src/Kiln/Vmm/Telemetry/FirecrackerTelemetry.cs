using System.Diagnostics.Metrics;

namespace Kiln.Vmm.Telemetry;

/// <summary>
/// The names under which Firecracker's own metrics are published, for OpenTelemetry's <c>AddMeter</c> and
/// Prometheus exporters.
/// </summary>
public static class FirecrackerTelemetry
{
    /// <summary>The meter publishing Firecracker's metrics (instruments named <c>firecracker.{section}.{field}</c>).</summary>
    public const string MeterName = "Kiln.Firecracker";

    /// <summary>The tag carrying the VM's (sandbox's) id on every measurement.</summary>
    public const string VmIdTag = "kiln.vm.id";

    /// <summary>The tag carrying the device id of per-device sections (<c>block_rootfs</c> → <c>rootfs</c>).</summary>
    public const string DeviceTag = "firecracker.device";

    /// <summary>The process-wide meter used when none is given (e.g. from an <see cref="IMeterFactory"/>).</summary>
    public static Meter Meter { get; } = new(MeterName, KilnInfo.Version);
}
