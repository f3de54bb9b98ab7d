using System.Collections.Concurrent;
using System.Diagnostics;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

// A boot and a restore run their steps through one mechanism with different span prefixes and failure wording: these
// pin what each side reports, so the shared runner cannot blur the two.
public sealed class StepSpanTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Records the Kiln spans started under one parent span of this test (tests run in parallel).</summary>
    private sealed class SpanRecorder : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly Activity _parent;
        private readonly ConcurrentQueue<string> _names = new();

        public SpanRecorder()
        {
            _parent = new Activity(nameof(StepSpanTests)).SetIdFormat(ActivityIdFormat.W3C).Start();
            var trace = _parent.TraceId;
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == KilnTelemetry.Name,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStarted = activity =>
                {
                    if (activity.TraceId == trace)
                        _names.Enqueue(activity.OperationName);
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public IReadOnlyList<string> Names => [.. _names];

        public void Dispose()
        {
            _listener.Dispose();
            _parent.Stop();
        }
    }

    [Fact]
    public async Task Each_boot_step_is_a_span_named_under_the_sandbox_start_prefix()
    {
        using var root = new TempRoot();
        using var spans = new SpanRecorder();

        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);

        Assert.Equal(["version", "stale-files", "spawn", "api-ready"], spans.Names.Take(4).Select(n => n.Replace(Microvm.StepSpanPrefix, "")));
        // InstanceStart answers once the VM runs: an API boot ends there, with no GET / of its own after it.
        Assert.Equal(Microvm.StepSpanPrefix + "instance-start", spans.Names[^1]);
        Assert.All(spans.Names, n => Assert.StartsWith("kiln.sandbox.start.", n));
    }

    [Fact]
    public async Task Each_restore_step_is_a_span_named_under_the_vm_restore_prefix()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        using var spans = new SpanRecorder();

        await using var vm = await Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1"),
            new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct);

        Assert.Equal(["kiln.vm.restore.stale-files", "kiln.vm.restore.spawn", "kiln.vm.restore.api-ready",
            "kiln.vm.restore.snapshot-load"], spans.Names);
    }

    [Fact]
    public async Task A_failed_restore_says_restore_and_a_failed_boot_says_boot()
    {
        using var restoreRoot = new TempRoot();
        using var bootRoot = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(restoreRoot, Ct);
        File.Delete(snapshot.MemoryPath);
        var knobs = new Dictionary<string, string> { ["FAKE_FC_FAIL"] = "PUT /boot-source=400:Injected fault" };

        var restore = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.RestoreAsync(snapshot,
            SnapshotFixture.OptionsIn(restoreRoot, "r1"), new RestoreOptions { VsockUdsPath = restoreRoot.Combine("r1", "v.sock") }, Ct));
        var boot = await Assert.ThrowsAsync<MicrovmBootException>(() =>
            Microvm.BootAsync(MicrovmFixture.Description(bootRoot), MicrovmFixture.Options(bootRoot, knobs), Ct));

        Assert.StartsWith("The microVM failed to restore at step 'snapshot-load': ", restore.Message);
        Assert.StartsWith("The microVM failed to boot at step 'boot-source': ", boot.Message);
    }
}
