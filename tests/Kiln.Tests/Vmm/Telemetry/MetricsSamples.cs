using System.Text;
using System.Text.Json;

namespace Kiln.Tests.Vmm.Telemetry;

/// <summary>Real Firecracker v1.16.1 output (tests/assets/samples) and an independent reading of it for comparison.</summary>
internal static class MetricsSamples
{
    public static string AssetPath(string name) => Path.Combine(AppContext.BaseDirectory, "assets", "samples", name);

    /// <summary>The two lines of samples/metrics.jsonl (the InstanceStart line and the FlushMetrics line).</summary>
    public static IReadOnlyList<string> Lines { get; } =
        File.ReadAllLines(AssetPath("metrics.jsonl")).Where(l => l.Length > 0).ToArray();

    /// <summary>
    /// A line with per-device sections, latency aggregates and non-zero values: the sample's first line with a block
    /// device "rootfs", a net device "eth0" and a vhost-user block device added, every value made distinct.
    /// </summary>
    public static string Rich { get; } = MakeRich();

    /// <summary>Every numeric leaf below a section, by dotted path, read with JsonDocument (the reference reading).</summary>
    public static Dictionary<string, ulong> Leaves(string line)
    {
        var result = new Dictionary<string, ulong>(StringComparer.Ordinal);
        using var doc = JsonDocument.Parse(line);
        foreach (var section in doc.RootElement.EnumerateObject())
        {
            if (section.Value.ValueKind == JsonValueKind.Object)
                Walk(section.Name, section.Value, result);
        }
        return result;
    }

    private static void Walk(string prefix, JsonElement element, Dictionary<string, ulong> into)
    {
        foreach (var property in element.EnumerateObject())
        {
            var path = prefix + "." + property.Name;
            if (property.Value.ValueKind == JsonValueKind.Object)
                Walk(path, property.Value, into);
            else
                into[path] = property.Value.GetUInt64();
        }
    }

    private static string MakeRich()
    {
        var counter = 1UL;
        var doc = System.Text.Json.Nodes.JsonNode.Parse(Lines[0])!.AsObject();
        doc["block_rootfs"] = doc["block"]!.DeepClone();
        doc["net_eth0"] = doc["net"]!.DeepClone();
        doc["vhost_user_block_data"] = System.Text.Json.Nodes.JsonNode.Parse(
            """{"activate_fails":0,"cfg_fails":0,"init_time_us":0,"activate_time_us":0,"config_change_time_us":0}""");
        Renumber(doc, ref counter);
        return doc.ToJsonString();
    }

    private static void Renumber(System.Text.Json.Nodes.JsonObject obj, ref ulong counter)
    {
        foreach (var (name, value) in obj.ToList())
        {
            if (value is System.Text.Json.Nodes.JsonObject child)
                Renumber(child, ref counter);
            else if (name != "utc_timestamp_ms")
                obj[name] = counter++;
        }
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
