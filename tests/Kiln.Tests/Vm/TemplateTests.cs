using System.Text.Json.Nodes;
using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Tests.Vm;

public sealed class TemplateTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TemplateCloneOptions Clone(TempRoot root, int i, Dictionary<string, string>? knobs = null) => new()
    {
        Microvm = SnapshotFixture.OptionsIn(root, $"c{i}", knobs),
        Directory = root.Combine($"c{i}"),
    };

    /// <summary>Boots the source VM (left Running) and makes a template of it.</summary>
    private static async Task<(Microvm Source, TemplateStore Store, MicrovmTemplate Template)> TemplateAsync(TempRoot root)
    {
        var source = await Microvm.BootAsync(SnapshotFixture.DescriptionWithVsock(root), MicrovmFixture.Options(root), Ct);
        var store = new TemplateStore(root.Combine("templates"));
        return (source, store, await store.CreateAsync("base", source, Ct));
    }

    private static async Task DisposeAllAsync(IEnumerable<Microvm> vms)
    {
        foreach (var vm in vms)
            await vm.DisposeAsync();
    }

    private static void AssertNoCloneLeft(TempRoot root, int i)
    {
        Assert.Empty(ProcessScan.WithCommandLineContaining(root.Combine($"c{i}", "fc.sock")));
        Assert.True(!Directory.Exists(root.Combine($"c{i}")) || Directory.GetFileSystemEntries(root.Combine($"c{i}")).Length == 0);
    }

    [Fact]
    public async Task Clones_of_one_template_run_side_by_side_each_answering_on_its_own_vsock_socket()
    {
        using var root = new TempRoot();
        var (source, _, template) = await TemplateAsync(root);
        await using var _source = source;

        var clones = await template.StartClonesAsync(3, i => Clone(root, i), cancellationToken: Ct);
        try
        {
            Assert.Equal(MicrovmState.Running, source.State);
            Assert.Equal(3, clones.Select(c => c.Pid).Distinct().Count());
            for (var i = 0; i < clones.Count; i++)
            {
                Assert.Equal(MicrovmState.Running, clones[i].State);
                Assert.Equal($"c{i}", (await clones[i].Client.DescribeInstanceAsync(Ct)).Id);
                Assert.Equal($"clone {i}", await VsockProbe.EchoAsync(Clone(root, i).VsockPath, SnapshotFixture.EchoPort, $"clone {i}", Ct));
            }
        }
        finally
        {
            await DisposeAllAsync(clones);
        }
    }

    [Fact]
    public async Task Each_clone_sees_its_own_copy_of_a_writable_drive_at_the_recorded_path_and_shares_read_only_ones()
    {
        using var root = new TempRoot();
        var (source, _, template) = await TemplateAsync(root);
        await using var _source = source;
        var clones = await template.StartClonesAsync(2, i => Clone(root, i), cancellationToken: Ct);
        try
        {
            // /proc/PID/root resolves paths in that process's mount namespace: what its VMM opens at the recorded path.
            string Seen(Microvm vm, string path) => $"/proc/{vm.Pid}/root{path}";
            await File.WriteAllTextAsync(Seen(clones[0], root.Combine("data.img")), "written by clone 0", Ct);

            Assert.Equal("written by clone 0", await File.ReadAllTextAsync(Clone(root, 0).DrivePath("data"), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync(Seen(clones[1], root.Combine("data.img")), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync(root.Combine("data.img"), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync(Path.Combine(template.Directory, "drives", "data"), Ct));
            Assert.False(File.Exists(Clone(root, 0).DrivePath("rootfs")));
            Assert.Equal("not a filesystem", await File.ReadAllTextAsync(Seen(clones[1], root.Combine("rootfs.ext4")), Ct));
        }
        finally
        {
            await DisposeAllAsync(clones);
        }
    }

    [Fact]
    public async Task Stopping_one_clone_leaves_the_others_running()
    {
        using var root = new TempRoot();
        var (source, _, template) = await TemplateAsync(root);
        await using var _source = source;
        var clones = await template.StartClonesAsync(3, i => Clone(root, i), cancellationToken: Ct);
        try
        {
            await clones[1].StopAsync(cancellationToken: Ct);

            Assert.Equal(MicrovmState.Exited, clones[1].State);
            foreach (var i in new[] { 0, 2 })
            {
                Assert.Equal(MicrovmState.Running, clones[i].State);
                Assert.Equal("still here", await VsockProbe.EchoAsync(Clone(root, i).VsockPath, SnapshotFixture.EchoPort, "still here", Ct));
            }
        }
        finally
        {
            await DisposeAllAsync(clones);
        }
    }

    [Fact]
    public async Task A_template_of_another_firecracker_release_is_refused_before_anything_starts()
    {
        using var root = new TempRoot();
        var (source, store, template) = await TemplateAsync(root);
        await using var _source = source;
        var manifestPath = Path.Combine(template.Directory, "template.json");
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(manifestPath, Ct))!;
        manifest["firecracker_version"] = "1.15.0";
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString(), Ct);

        var e = await Assert.ThrowsAsync<TemplateMismatchException>(() => store.Open("base").StartCloneAsync(Clone(root, 0), Ct));

        Assert.Equal(TemplateMismatchKind.FirecrackerVersion, e.Kind);
        Assert.Contains("1.15.0", e.Message);
        AssertNoCloneLeft(root, 0);
    }

    [Fact]
    public async Task A_template_whose_drive_copy_changed_is_refused_before_anything_starts()
    {
        using var root = new TempRoot();
        var (source, _, template) = await TemplateAsync(root);
        await using var _source = source;
        await File.WriteAllTextAsync(Path.Combine(template.Directory, "drives", "data"), "DATA", Ct); // same size, other bytes

        var e = await Assert.ThrowsAsync<TemplateMismatchException>(() => template.StartCloneAsync(Clone(root, 0), Ct));

        Assert.Equal(TemplateMismatchKind.FileChanged, e.Kind);
        Assert.Contains("drives/data", e.Message);
        AssertNoCloneLeft(root, 0);
    }

    [Fact]
    public async Task A_clone_that_fails_half_way_stops_every_clone_of_its_batch_and_leaves_no_process_or_file()
    {
        using var root = new TempRoot();
        var (source, _, template) = await TemplateAsync(root);
        await using var _source = source;
        var dying = new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "PUT /snapshot/load" };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() =>
            template.StartClonesAsync(3, i => Clone(root, i, i == 2 ? dying : null), cancellationToken: Ct));

        Assert.Equal("snapshot-load", e.Step);
        for (var i = 0; i < 3; i++)
            AssertNoCloneLeft(root, i);
        Assert.Equal(MicrovmState.Running, source.State);
    }

    [Fact]
    public async Task A_template_is_listed_reopened_and_deleted_and_its_source_keeps_running()
    {
        using var root = new TempRoot();
        var (source, store, template) = await TemplateAsync(root);
        await using var _source = source;

        Assert.Equal(MicrovmState.Running, source.State);
        Assert.Equal(InstanceState.Running, (await source.Client.DescribeInstanceAsync(Ct)).State);
        Assert.Equal(["base"], store.List().Select(t => t.Name));
        var reopened = store.Open("base");
        Assert.Equal(template.Manifest.FirecrackerVersion, reopened.Manifest.FirecrackerVersion);
        Assert.Equal([("rootfs", true), ("data", false)], reopened.Manifest.Drives.Select(d => (d.DriveId, d.IsReadOnly)));
        Assert.Equal(128, reopened.Manifest.MemSizeMib);
        await Assert.ThrowsAsync<TemplateStoreException>(() => store.CreateAsync("base", source, Ct));

        Assert.True(store.Delete("base"));
        Assert.Empty(store.List());
        Assert.False(store.Delete("base"));
        Assert.Empty(Directory.GetFileSystemEntries(store.Root));
    }

    [Theory]
    [InlineData("")]
    [InlineData("../up")]
    [InlineData("-flag")]
    [InlineData("a/b")]
    public void A_name_that_cannot_be_a_directory_of_the_store_is_refused(string name)
    {
        using var root = new TempRoot();
        Assert.Throws<TemplateStoreException>(() => new TemplateStore(root.Path).Open(name));
    }

    [Fact]
    public async Task A_batch_whose_clean_up_fails_for_one_clone_still_stops_every_clone_and_throws_the_clones_failure()
    {
        using var root = new TempRoot();
        var (source, _, template) = await TemplateAsync(root);
        await using var _source = source;
        var dying = new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "PUT /snapshot/load" };
        var blocked = root.Combine("c0", "console.log");
        TemplateCloneOptions Options(int i)
        {
            var clone = Clone(root, i, i == 2 ? dying : null);
            if (i != 1)
                return clone;
            // While clone 1 prepares, clone 0's console becomes a directory with something in it: removing clone 0's
            // files (the batch's clean-up) fails.
            var block = new BootStep("block-clean-up", _ =>
            {
                File.Delete(blocked);
                Directory.CreateDirectory(Path.Combine(blocked, "blocker"));
                return Task.CompletedTask;
            });
            return clone with { Microvm = clone.Microvm with { Preparation = [block] } };
        }

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => template.StartClonesAsync(3, Options, cancellationToken: Ct));

        Assert.Equal("snapshot-load", e.Step);
        Assert.NotEmpty(CleanupFailures.Of(e));
        for (var i = 0; i < 3; i++)
            Assert.Empty(ProcessScan.WithCommandLineContaining(root.Combine($"c{i}", "fc.sock")));
        Assert.Equal(MicrovmState.Running, source.State);
    }

    [Fact]
    public async Task A_template_whose_snapshot_fails_because_the_vmm_died_throws_the_snapshots_failure_not_the_resumes()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "PUT /snapshot/create" };
        await using var source = await Microvm.BootAsync(SnapshotFixture.DescriptionWithVsock(root), MicrovmFixture.Options(root, knobs), Ct);
        var store = new TemplateStore(root.Combine("templates"));

        var e = await Assert.ThrowsAnyAsync<Exception>(() => store.CreateAsync("base", source, Ct));

        // The resume (the clean-up) failed too, as the VMM is gone: attached, not thrown in the snapshot's place.
        Assert.Single(CleanupFailures.Of(e));
        Assert.Empty(Directory.GetFileSystemEntries(store.Root));
    }

    [Fact]
    public async Task A_template_whose_pause_was_cancelled_after_firecracker_paused_leaves_its_source_running()
    {
        using var root = new TempRoot();
        // The pause is carried out and its answer held back; the caller gives up in between.
        var options = MicrovmFixture.Options(root, new() { ["FAKE_FC_SLOW_ANSWER"] = "PATCH /vm#1=3000" });
        await using var source = await Microvm.BootAsync(SnapshotFixture.DescriptionWithVsock(root), options, Ct);
        var store = new TemplateStore(root.Combine("templates"));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var cancel = Reliability.FaultHarness.InjectAsync(Reliability.Fault.Cancel, options.LogPath!, Reliability.FaultHarness.LogMarker("PATCH /vm"), () => null, cts);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.CreateAsync("base", source, cts.Token));
        await cancel;

        Assert.False(source.IsStateInDoubt);
        Assert.Equal(MicrovmState.Running, source.State);
        Assert.Equal(InstanceState.Running, (await source.Client.DescribeInstanceAsync(Ct)).State);
        Assert.Empty(Directory.GetFileSystemEntries(store.Root));
    }
}
