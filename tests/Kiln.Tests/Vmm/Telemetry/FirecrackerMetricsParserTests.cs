using Kiln.Vmm.Telemetry;

namespace Kiln.Tests.Vmm.Telemetry;

public sealed class FirecrackerMetricsParserTests
{
    private static (FirecrackerMetricsLineResult Result, List<FirecrackerMetricValue> Values) Parse(string line, FirecrackerMetricsParser? parser = null)
    {
        var values = new List<FirecrackerMetricValue>();
        var result = (parser ?? new FirecrackerMetricsParser()).Parse(MetricsSamples.Utf8(line), values);
        return (result, values);
    }

    [Fact]
    public void Every_numeric_field_of_real_firecracker_lines_is_read_with_its_value()
    {
        foreach (var line in MetricsSamples.Lines.Append(MetricsSamples.Rich))
        {
            var (result, values) = Parse(line);

            Assert.Equal(FirecrackerMetricsLineStatus.Parsed, result.Status);
            var expected = MetricsSamples.Leaves(line);
            Assert.Equal(expected.Count, result.ValueCount);
            Assert.Equal(expected, values.ToDictionary(v => v.Key.Path, v => v.Value));
        }
    }

    [Fact]
    public void The_timestamp_is_returned_and_is_not_a_metric()
    {
        var (result, values) = Parse(MetricsSamples.Lines[1]);

        Assert.Equal(1795720904493, result.TimestampMs);
        Assert.DoesNotContain(values, v => v.Key.Path.Contains("utc_timestamp_ms", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("put_api_requests.actions_count", "put_api_requests", null, "actions_count", FirecrackerMetricKind.Counter, null)]
    [InlineData("latencies_us.pause_vm", "latencies_us", null, "pause_vm", FirecrackerMetricKind.Gauge, "us")]
    [InlineData("api_server.process_startup_time_us", "api_server", null, "process_startup_time_us", FirecrackerMetricKind.Gauge, "us")]
    [InlineData("seccomp.num_faults", "seccomp", null, "num_faults", FirecrackerMetricKind.Gauge, null)]
    [InlineData("vmm.panic_count", "vmm", null, "panic_count", FirecrackerMetricKind.Gauge, null)]
    [InlineData("signals.sigbus", "signals", null, "sigbus", FirecrackerMetricKind.Gauge, null)]
    [InlineData("signals.sigpipe", "signals", null, "sigpipe", FirecrackerMetricKind.Counter, null)]
    [InlineData("block_rootfs.read_bytes", "block", "rootfs", "read_bytes", FirecrackerMetricKind.Counter, "By")]
    [InlineData("block_rootfs.read_agg.min_us", "block", "rootfs", "read_agg.min_us", FirecrackerMetricKind.Gauge, "us")]
    [InlineData("block.read_agg.max_us", "block", null, "read_agg.max_us", FirecrackerMetricKind.Gauge, "us")]
    [InlineData("block.read_agg.sum_us", "block", null, "read_agg.sum_us", FirecrackerMetricKind.Counter, "us")]
    [InlineData("net_eth_0.rx_bytes_count", "net", "eth_0", "rx_bytes_count", FirecrackerMetricKind.Counter, "By")]
    [InlineData("vhost_user_block_data.init_time_us", "vhost_user_block", "data", "init_time_us", FirecrackerMetricKind.Gauge, "us")]
    [InlineData("vhost_user_block_data.cfg_fails", "vhost_user_block", "data", "cfg_fails", FirecrackerMetricKind.Counter, null)]
    [InlineData("memory_hotplug.plug_agg.sum_us", "memory_hotplug", null, "plug_agg.sum_us", FirecrackerMetricKind.Counter, "us")]
    public void A_field_path_says_its_section_device_kind_and_unit(
        string path, string section, string? device, string field, FirecrackerMetricKind kind, string? unit)
    {
        var key = FirecrackerMetricKey.FromPath(path);

        Assert.Equal((section, device, field, kind, unit), (key.Section, key.Device, key.Field, key.Kind, key.Unit));
        Assert.Equal($"firecracker.{section}.{field}", key.InstrumentName);
    }

    [Theory]
    [InlineData("{\"block\":{\"read_count\":1}", "truncated")]
    [InlineData("{\"block\":{\"read_count\":1}}}", "a stray brace after the object")]
    [InlineData("{\"block\":{\"read_count\":1}} x", "text after the object")]
    [InlineData("{\"block\":{\"read_count\":1}}{\"block\":{\"read_count\":1}}", "two objects")]
    [InlineData("[1,2]", "an array")]
    [InlineData("42", "a number")]
    [InlineData("\"text\"", "a string")]
    [InlineData("{\"block\":{\"read_count\":-1}}", "a negative count")]
    [InlineData("{\"block\":{\"read_count\":1.5}}", "a fraction")]
    [InlineData("{\"block\":{\"read_count\":18446744073709551616}}", "a count above u64")]
    [InlineData("{\"block\":{\"read_count\":\"1\"}}", "a string value")]
    [InlineData("{\"block\":{\"read_count\":null}}", "null")]
    [InlineData("{\"block\":{\"read_count\":[1]}}", "an array value")]
    [InlineData("{\"block\":{\"\":1}}", "an empty field name")]
    [InlineData("{\"\":{\"a\":1}}", "an empty section name")]
    [InlineData("{\"utc_timestamp_ms\":1.5,\"block\":{\"read_count\":1}}", "a fractional timestamp")]
    [InlineData("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":1}}}}}}}}}", "too deep")]
    [InlineData("\u0000\u0001garbage", "control bytes")]
    public void A_malformed_line_is_skipped_whole_with_a_reason(string line, string because)
    {
        var values = new List<FirecrackerMetricValue> { new(FirecrackerMetricKey.FromPath("x.kept"), 7) };

        var result = new FirecrackerMetricsParser().Parse(MetricsSamples.Utf8(line), values);

        Assert.True(result.Status == FirecrackerMetricsLineStatus.Malformed, because);
        Assert.False(string.IsNullOrEmpty(result.Error), because);
        Assert.Equal(0, result.ValueCount);
        // What was in the list before stays; nothing of the bad line is left behind.
        Assert.Equal("x.kept", Assert.Single(values).Key.Path);
    }

    [Fact]
    public void Invalid_utf8_is_malformed_not_an_exception()
    {
        var values = new List<FirecrackerMetricValue>();

        var result = new FirecrackerMetricsParser().Parse([(byte)'{', (byte)'"', 0xff, 0xfe, (byte)'"', (byte)':', (byte)'1', (byte)'}'], values);

        Assert.Equal(FirecrackerMetricsLineStatus.Malformed, result.Status);
        Assert.Empty(values);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\r")]
    public void A_blank_line_is_skipped_as_blank(string line)
    {
        var (result, values) = Parse(line);

        Assert.Equal(FirecrackerMetricsLineStatus.Blank, result.Status);
        Assert.Empty(values);
    }

    [Fact]
    public void Escaped_names_are_unescaped_and_a_trailing_carriage_return_is_fine()
    {
        var (result, values) = Parse("{\"bl\\u006fck\":{\"read_count\":3}}\r");

        Assert.Equal(FirecrackerMetricsLineStatus.Parsed, result.Status);
        Assert.Equal(("block.read_count", 3UL), (values[0].Key.Path, values[0].Value));
    }

    [Fact]
    public void A_line_seen_before_parses_without_allocating()
    {
        var parser = new FirecrackerMetricsParser();
        var line = MetricsSamples.Utf8(MetricsSamples.Rich);
        var values = new List<FirecrackerMetricValue>(1024);
        parser.Parse(line, values);
        values.Clear();

        var before = GC.GetAllocatedBytesForCurrentThread();
        var result = parser.Parse(line, values);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(FirecrackerMetricsLineStatus.Parsed, result.Status);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void The_same_path_gives_the_same_key_object()
    {
        var parser = new FirecrackerMetricsParser();

        var (_, first) = Parse(MetricsSamples.Lines[0], parser);
        var (_, second) = Parse(MetricsSamples.Lines[1], parser);

        Assert.Same(first[0].Key, second[0].Key);
    }
}
