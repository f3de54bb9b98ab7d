using System.Collections.Concurrent;
using System.Diagnostics;
using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

/// <summary>
/// Every operation on a running microVM is a span of Kiln's ActivitySource (<c>kiln.vm.pause</c>, …), tagged with
/// the VM's id, Error when it fails, and begun only once the state allows the operation (a refused one has none).
/// </summary>
public sealed class OperationSpanTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Pause_snapshot_resume_and_a_drive_update_are_spans_tagged_with_the_vm_and_a_failure_is_an_error()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);
        using var parent = new Activity(nameof(OperationSpanTests)).SetIdFormat(ActivityIdFormat.W3C).Start();
        var trace = parent.TraceId;
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == KilnTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.TraceId == trace)
                    spans.Enqueue(activity);
            },
        };
        ActivitySource.AddActivityListener(listener);

        await Assert.ThrowsAsync<MicrovmStateException>(() => vm.ResumeAsync(Ct)); // refused before any span
        await vm.PauseAsync(Ct);
        await vm.CreateSnapshotAsync(new SnapshotCreateParams { SnapshotPath = root.Combine("s.state"), MemFilePath = root.Combine("s.mem") }, Ct);
        await vm.ResumeAsync(Ct);
        await Assert.ThrowsAsync<FirecrackerApiException>(() => vm.UpdateDriveAsync(new PartialDrive { DriveId = "no-such-drive", PathOnHost = root.Combine("s.mem") }, Ct));

        Assert.Equal(["kiln.vm.pause", "kiln.vm.snapshot.create", "kiln.vm.resume", "kiln.vm.drive.update"], spans.Select(s => s.OperationName));
        Assert.All(spans, s => Assert.Equal(vm.Options.Id ?? vm.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), s.GetTagItem("kiln.vm.id")));
        Assert.Equal([ActivityStatusCode.Unset, ActivityStatusCode.Unset, ActivityStatusCode.Unset, ActivityStatusCode.Error], spans.Select(s => s.Status));
    }
}
