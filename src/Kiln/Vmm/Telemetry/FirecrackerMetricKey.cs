// What one numeric field of a metrics line means: which section and device it belongs to, whether it counts or
// stores, and the instrument name it is published under. Keys are made once per distinct path and then reused, so
// parsing a line allocates nothing once every field has been seen.
namespace Kiln.Vmm.Telemetry;

/// <summary>
/// One metric of Firecracker's metrics file, identified by its JSON path (<c>block_rootfs.read_agg.min_us</c>).
/// </summary>
public sealed class FirecrackerMetricKey
{
    // Sections whose fields are all SharedStoreMetrics in Firecracker's src/vmm/src/logger/metrics.rs (v1.16.1).
    private static readonly string[] StoreSections = ["api_server", "latencies_us", "seccomp", "vmm"];

    // Sections written once per device as `{prefix}{device id}` besides the aggregate `{section}` itself.
    private static readonly string[] PerDevicePrefixes = ["block_", "net_"];

    private FirecrackerMetricKey(string path, string section, string? device, string field, FirecrackerMetricKind kind)
    {
        Path = path;
        Section = section;
        Device = device;
        Field = field;
        Kind = kind;
        InstrumentName = "firecracker." + section + "." + field;
        Unit = section == "latencies_us" ? "us" : UnitOf(field);
    }

    /// <summary>The field's JSON path in the line, segments joined with dots.</summary>
    public string Path { get; }

    /// <summary>The section without a device suffix: <c>block</c> for <c>block_rootfs</c>.</summary>
    public string Section { get; }

    /// <summary>The device the section is about (<c>rootfs</c> for <c>block_rootfs</c>); null for aggregates.</summary>
    public string? Device { get; }

    /// <summary>The path below the section: <c>read_bytes</c>, <c>read_agg.min_us</c>.</summary>
    public string Field { get; }

    /// <summary>Whether the value is a delta or a current value.</summary>
    public FirecrackerMetricKind Kind { get; }

    /// <summary>The instrument name, <c>firecracker.{section}.{field}</c>; devices are a tag, not part of the name.</summary>
    public string InstrumentName { get; }

    /// <summary>The UCUM-style unit OpenTelemetry expects (<c>us</c>, <c>By</c>), or null.</summary>
    public string? Unit { get; }

    /// <summary>Classifies a dotted path (at least two segments: section and field).</summary>
    /// <exception cref="ArgumentException">The path has no field below its section.</exception>
    public static FirecrackerMetricKey FromPath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var dot = path.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == path.Length - 1)
            throw new ArgumentException($"'{path}' names no field below a section.", nameof(path));
        return FromParts(path, dot);
    }

    // The parser knows where the section ends (a section name may itself hold a dot); both sides are non-empty.
    internal static FirecrackerMetricKey FromParts(string path, int sectionLength)
    {
        var sectionKey = path[..sectionLength];
        var field = path[(sectionLength + 1)..];
        var (section, device) = SplitDevice(sectionKey);
        return new FirecrackerMetricKey(path, section, device, field, KindOf(section, field));
    }

    private static (string Section, string? Device) SplitDevice(string sectionKey)
    {
        foreach (var prefix in PerDevicePrefixes)
        {
            if (sectionKey.Length > prefix.Length && sectionKey.StartsWith(prefix, StringComparison.Ordinal))
                return (prefix[..^1], sectionKey[prefix.Length..]);
        }
        // vhost_user_{module}_{device id}, e.g. vhost_user_block_rootfs.
        const string vhost = "vhost_user_";
        if (sectionKey.StartsWith(vhost, StringComparison.Ordinal))
        {
            var rest = sectionKey[vhost.Length..];
            var underscore = rest.IndexOf('_', StringComparison.Ordinal);
            if (underscore > 0 && underscore < rest.Length - 1)
                return (vhost + rest[..underscore], rest[(underscore + 1)..]);
        }
        return (sectionKey, null);
    }

    private static FirecrackerMetricKind KindOf(string section, string field)
    {
        if (Array.IndexOf(StoreSections, section) >= 0)
            return FirecrackerMetricKind.Gauge;
        // Deadly signals are stored (0 or 1) so a signal handler can write them safely; SIGPIPE alone is counted.
        if (section == "signals")
            return field == "sigpipe" ? FirecrackerMetricKind.Counter : FirecrackerMetricKind.Gauge;
        // Latency aggregates keep min and max; their sum counts.
        if (field.EndsWith(".min_us", StringComparison.Ordinal) || field.EndsWith(".max_us", StringComparison.Ordinal))
            return FirecrackerMetricKind.Gauge;
        // vhost-user devices store their init/activate/config-change times.
        if (section.StartsWith("vhost_user_", StringComparison.Ordinal) && field.EndsWith("_time_us", StringComparison.Ordinal))
            return FirecrackerMetricKind.Gauge;
        return FirecrackerMetricKind.Counter;
    }

    private static string? UnitOf(string field)
    {
        if (field.EndsWith("_us", StringComparison.Ordinal))
            return "us";
        if (field.EndsWith("_bytes", StringComparison.Ordinal) || field.EndsWith("bytes_count", StringComparison.Ordinal))
            return "By";
        return null;
    }

    /// <inheritdoc/>
    public override string ToString() => Path;
}
