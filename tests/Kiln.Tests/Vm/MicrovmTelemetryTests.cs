using System.Diagnostics.Metrics;
using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Tests.Vmm.Telemetry;
using Kiln.Vm;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Kiln.Tests.Vm;

// A microVM booted with a metrics path and a logger factory feeds its meter and logger by itself: nobody wires a
// reader, and the readers end with the VMM.
public sealed class MicrovmTelemetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_microvm_booted_with_a_metrics_path_publishes_firecrackers_metrics_without_any_wiring()
    {
        using var root = new TempRoot();
        using var meter = new Meter("Kiln.Tests.Microvm." + Guid.NewGuid().ToString("N"));
        using var recorder = new MeterRecorder(meter);
        var options = MicrovmFixture.Options(root) with { MetricsPath = root.Combine("metrics.fifo"), Meter = meter };
        var description = MicrovmFixture.Description(root) with { Balloon = new Balloon { AmountMib = 0, DeflateOnOom = true } };
        var vm = await Microvm.BootAsync(description, options, Ct);
        try
        {
            Assert.True(Kiln.Interop.FileNodes.IsFifo(root.Combine("metrics.fifo")));
            await vm.SetBalloonAsync(16, Ct);
            await vm.FlushMetricsAsync(Ct);
        }
        finally
        {
            await vm.DisposeAsync();
        }
        await vm.Telemetry.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        // One line at InstanceStart, one for FlushMetrics; the VMM's exit ended the reader after both.
        Assert.Equal(2, vm.Metrics!.LinesPublished);
        Assert.Equal(0, vm.Metrics.LinesSkipped);
        Assert.Equal(2, recorder.Counter("firecracker.put_api_requests.actions_count{kiln.vm.id=test-vm}"));
        Assert.Equal(1, recorder.Counter("firecracker.balloon.inflate_count{kiln.vm.id=test-vm}"));
    }

    [Fact]
    public async Task A_microvm_booted_with_a_logger_factory_forwards_firecrackers_log_lines_at_their_levels()
    {
        using var root = new TempRoot();
        var collector = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(collector)));
        var options = MicrovmFixture.Options(root) with { LoggerFactory = loggerFactory };
        var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct);
        await vm.DisposeAsync();
        await vm.Telemetry.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        var firecracker = collector.GetSnapshot().Where(r => r.Category == "Kiln.Firecracker").ToList();
        Assert.Contains(firecracker, r => r.Level == LogLevel.Information && r.Message.Contains("Running Firecracker v", StringComparison.Ordinal));
        Assert.Contains(firecracker, r => r.Message.Contains("The API server received a Put request on \"/actions\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_detached_microvm_released_while_it_runs_stops_its_readers_and_keeps_running()
    {
        using var root = new TempRoot();
        var options = MicrovmFixture.Options(root) with
        {
            MetricsPath = root.Combine("metrics.fifo"),
            Ownership = Kiln.Vmm.VmmOwnership.Detached,
        };
        var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct);
        var identity = vm.Identity;

        await vm.DisposeAsync();

        await vm.Telemetry.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await using var again = Microvm.TryAttach(identity, options, MicrovmState.Running);
        Assert.NotNull(again);
        Assert.Null(again.Metrics);
        await again.StopAsync(Kiln.Vm.ShutdownPlan.Kill(), Ct);
    }

    [Fact]
    public async Task A_microvm_without_metrics_or_logger_starts_no_reader()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);

        Assert.Null(vm.Metrics);
        Assert.True(vm.Telemetry.IsCompleted);
    }
}
