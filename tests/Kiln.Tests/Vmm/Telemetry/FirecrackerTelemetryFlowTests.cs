using System.Diagnostics.Metrics;
using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vmm;
using Kiln.Vmm.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Kiln.Tests.Vmm.Telemetry;

// Firecracker (the stand-in, or the real one when configured) writes its metrics and log into FIFOs; Kiln reads
// them while the VM runs and hands them to a MeterListener and an ILogger.
public sealed class FirecrackerTelemetryFlowTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Targets => SandboxTarget.Names;

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task Metrics_and_log_lines_flow_from_a_running_vm_into_a_meter_listener_and_a_logger(string targetName)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.For(targetName, root);
        using var meter = new Meter("Kiln.Tests.Flow." + Guid.NewGuid().ToString("N"));
        using var recorder = new MeterRecorder(meter);
        var logger = new FakeLogger();
        var metricsFifo = root.Combine("metrics.fifo");
        var logFifo = root.Combine("log.fifo");
        FirecrackerMetricsReader.CreateFifo(metricsFifo);
        FirecrackerMetricsReader.CreateFifo(logFifo);
        await using var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
        {
            ExecutablePath = target.FirecrackerPath,
            Arguments = new VmmArguments(root.Combine("api.sock")).WithId("flow-1"),
            OutputPath = root.Combine("console.log"),
        }, Ct);
        var publisher = new FirecrackerMetricsPublisher("flow-1", meter);
        var until = new FollowOptions { Until = vmm.Exited };
        var metricsLoop = FirecrackerMetricsReader.RunAsync(metricsFifo, publisher, until, Ct);
        var logLoop = FirecrackerLogForwarder.RunAsync(logFifo, logger, "flow-1", until, Ct);
        await using var fc = new FirecrackerClient(root.Combine("api.sock"));
        await Eventually.ApiAnswersAsync(fc, vmm, TimeSpan.FromSeconds(10));

        await fc.PutLoggerAsync(new Logger { LogPath = logFifo, Level = FirecrackerLogLevel.Info, ShowLevel = true, ShowLogOrigin = true }, Ct);
        await fc.PutMetricsAsync(new Metrics { MetricsPath = metricsFifo }, Ct);
        await fc.PutGuestBootSourceAsync(new BootSource
        {
            KernelImagePath = target.KernelPath,
            InitrdPath = target.InitrdPath,
            BootArgs = string.Join(' ', ["console=ttyS0", "reboot=k", "panic=1", .. target.KernelParams.Select(p => p.Value is null ? p.Key : $"{p.Key}={p.Value}")]),
        }, Ct);
        if (target.ImagePath is not null)
            await fc.PutGuestDriveByIDAsync(new Drive { DriveId = "rootfs", PathOnHost = target.ImagePath, IsRootDevice = true, IsReadOnly = true }, Ct);
        await fc.StartInstanceAsync(Ct);
        await fc.FlushMetricsAsync(Ct);
        await vmm.KillAsync(Ct);
        await Task.WhenAll(metricsLoop, logLoop).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        // One line at InstanceStart, one for FlushMetrics: every PUT /actions is counted across them.
        Assert.Equal(2, publisher.LinesPublished);
        Assert.Equal(0, publisher.LinesSkipped);
        Assert.Equal(2, recorder.Counter("firecracker.put_api_requests.actions_count{kiln.vm.id=flow-1}"));
        Assert.Equal(1, recorder.Counter("firecracker.put_api_requests.boot_source_count{kiln.vm.id=flow-1}"));
        var logged = logger.Collector.GetSnapshot();
        Assert.Contains(logged, r => r.Level == LogLevel.Information
            && r.Message.Contains("The API server received a Put request on \"/actions\"", StringComparison.Ordinal));
        Assert.All(logged, r => Assert.Equal(100, r.Id.Id));
    }

}
