using System.Diagnostics.Metrics;
using Kiln.Vmm.Telemetry;

namespace Kiln.Tests.Vmm.Telemetry;

public sealed class FirecrackerMetricsPublisherTests
{
    private static Meter NewMeter() => new("Kiln.Tests.Firecracker." + Guid.NewGuid().ToString("N"));

    [Fact]
    public void Counters_add_each_lines_deltas_tagged_with_the_vm_id()
    {
        using var meter = NewMeter();
        using var recorder = new MeterRecorder(meter);
        var publisher = new FirecrackerMetricsPublisher("vm-1", meter);

        publisher.Publish(MetricsSamples.Utf8(MetricsSamples.Lines[0]));
        publisher.Publish(MetricsSamples.Utf8(MetricsSamples.Lines[1]));

        // The sample's InstanceStart line counts one PUT /actions, its FlushMetrics line one more.
        Assert.Equal(2, recorder.Counter("firecracker.put_api_requests.actions_count{kiln.vm.id=vm-1}"));
        Assert.Equal(1, recorder.Counter("firecracker.put_api_requests.boot_source_count{kiln.vm.id=vm-1}"));
        Assert.Equal(0, recorder.Counter("firecracker.block.read_count{kiln.vm.id=vm-1}"));
        Assert.Equal((2L, 0L), (publisher.LinesPublished, publisher.LinesSkipped));
        Assert.Equal(1795720904493, publisher.LastTimestampMs);
    }

    [Fact]
    public void Every_value_of_a_line_reaches_a_listener_with_per_device_sections_tagged_by_device()
    {
        using var meter = NewMeter();
        using var recorder = new MeterRecorder(meter);
        var publisher = new FirecrackerMetricsPublisher("vm-2", meter);

        publisher.Publish(MetricsSamples.Utf8(MetricsSamples.Rich));

        var expected = MetricsSamples.Leaves(MetricsSamples.Rich).ToDictionary(
            leaf => ExpectedKey(FirecrackerMetricKey.FromPath(leaf.Key), "vm-2"), leaf => (long)leaf.Value);
        var seen = recorder.CounterSums.Concat(recorder.GaugeValues).ToDictionary();
        Assert.Equal(expected, seen);
        Assert.Contains("firecracker.block.read_agg.min_us{firecracker.device=rootfs,kiln.vm.id=vm-2}", recorder.GaugeValues.Keys);
        Assert.Contains("firecracker.latencies_us.pause_vm{kiln.vm.id=vm-2}", recorder.GaugeValues.Keys);
    }

    [Fact]
    public void Gauges_hold_the_latest_value_while_counters_accumulate()
    {
        using var meter = NewMeter();
        using var recorder = new MeterRecorder(meter);
        var publisher = new FirecrackerMetricsPublisher("vm-3", meter);

        publisher.Publish("{\"latencies_us\":{\"pause_vm\":120},\"vcpu\":{\"exit_io_in\":5}}"u8);
        publisher.Publish("{\"latencies_us\":{\"pause_vm\":80},\"vcpu\":{\"exit_io_in\":7}}"u8);

        Assert.Equal(80, recorder.Gauge("firecracker.latencies_us.pause_vm{kiln.vm.id=vm-3}"));
        Assert.Equal(12, recorder.Counter("firecracker.vcpu.exit_io_in{kiln.vm.id=vm-3}"));
    }

    [Fact]
    public void Two_vms_on_one_meter_share_instruments_and_are_told_apart_by_their_tag()
    {
        using var meter = NewMeter();
        using var recorder = new MeterRecorder(meter);
        var a = new FirecrackerMetricsPublisher("a", meter);
        var b = new FirecrackerMetricsPublisher("b", meter);

        a.Publish("{\"vcpu\":{\"failures\":1}}"u8);
        b.Publish("{\"vcpu\":{\"failures\":4}}"u8);

        Assert.Equal(1, recorder.Counter("firecracker.vcpu.failures{kiln.vm.id=a}"));
        Assert.Equal(4, recorder.Counter("firecracker.vcpu.failures{kiln.vm.id=b}"));
        Assert.Single(recorder.CounterSums.Keys, k => k.StartsWith("firecracker.vcpu.failures{kiln.vm.id=a", StringComparison.Ordinal));
    }

    [Fact]
    public void A_malformed_line_records_nothing_and_is_counted_as_skipped()
    {
        using var meter = NewMeter();
        using var recorder = new MeterRecorder(meter);
        var publisher = new FirecrackerMetricsPublisher("vm-4", meter);

        var result = publisher.Publish("{\"vcpu\":{\"failures\":1},\"block\":{\"read_count\":\"x\"}}"u8);

        Assert.Equal(FirecrackerMetricsLineStatus.Malformed, result.Status);
        Assert.Empty(recorder.CounterSums);
        Assert.Equal((0L, 1L), (publisher.LinesPublished, publisher.LinesSkipped));
    }

    internal static string ExpectedKey(FirecrackerMetricKey key, string vmId) => key.Device is null
        ? $"{key.InstrumentName}{{kiln.vm.id={vmId}}}"
        : $"{key.InstrumentName}{{firecracker.device={key.Device},kiln.vm.id={vmId}}}";
}
