using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

public sealed class RestoreTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void AssertNothingLeft(TempRoot root, string dir)
    {
        Assert.Empty(ProcessScan.WithCommandLineContaining(root.Combine(dir, "fc.sock")));
        Assert.Empty(Directory.GetFileSystemEntries(root.Combine(dir)));
    }

    [Fact]
    public async Task A_snapshot_restores_to_Running_and_its_guest_answers_on_the_overridden_vsock_socket()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        var options = SnapshotFixture.OptionsIn(root, "r1");

        await using var vm = await Microvm.RestoreAsync(snapshot, options, new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct);

        Assert.Equal(MicrovmState.Running, vm.State);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
        Assert.Equal("hello", await VsockProbe.EchoAsync(root.Combine("r1", "v.sock"), SnapshotFixture.EchoPort, "hello", Ct));
    }

    [Fact]
    public async Task A_resumed_restore_sends_the_load_as_its_only_request_and_is_Running_when_it_returns()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        var options = SnapshotFixture.OptionsIn(root, "r1");

        await using var vm = await Microvm.RestoreAsync(snapshot, options, new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct);

        // No GET / probe before the load nor poll after it: a 204 to a load with resume_vm means Running.
        var requests = File.ReadLines(options.LogPath!).Where(l => l.Contains("The API server received a", StringComparison.Ordinal)).ToArray();
        Assert.Contains("/snapshot/load", Assert.Single(requests), StringComparison.Ordinal);
        Assert.Equal(MicrovmState.Running, vm.State);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
    }

    [Fact]
    public async Task A_restored_vmm_maps_the_memory_file_privately_so_restores_of_one_file_share_its_pages()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);

        await using var vm = await Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1"),
            new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct);

        var mapping = File.ReadLines($"/proc/{vm.Pid}/maps").Where(l => l.EndsWith(" " + snapshot.MemoryPath, StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(mapping);
        Assert.All(mapping, l => Assert.EndsWith("p", l.Split(' ')[1])); // private (copy-on-write), never shared back into the file
    }

    [Fact]
    public async Task A_restore_without_resume_leaves_the_microvm_Paused_until_resumed()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);

        await using var vm = await Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1"),
            new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock"), Resume = false }, Ct);

        Assert.Equal(MicrovmState.Paused, vm.State);
        Assert.Equal(InstanceState.Paused, (await vm.Client.DescribeInstanceAsync(Ct)).State);
        await vm.ResumeAsync(Ct);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
    }

    [Fact]
    public async Task A_vm_restored_with_dirty_page_tracking_takes_a_diff_snapshot()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        await using var vm = await Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1"),
            new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock"), TrackDirtyPages = true, ClockRealtime = true }, Ct);

        await vm.PauseAsync(Ct);
        await vm.CreateSnapshotAsync(new SnapshotCreateParams
        {
            SnapshotPath = root.Combine("r1", "diff.state"),
            MemFilePath = root.Combine("r1", "diff.mem"),
            SnapshotType = SnapshotType.Diff,
        }, Ct);

        Assert.True(File.Exists(root.Combine("r1", "diff.state")));
        Assert.True(File.Exists(root.Combine("r1", "diff.mem")));
    }

    [Fact]
    public async Task A_missing_memory_file_fails_at_snapshot_load_with_firecrackers_fault_and_leaves_nothing()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        File.Delete(snapshot.MemoryPath);

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1"),
            new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct));

        Assert.Equal("snapshot-load", e.Step);
        Assert.Contains("Failed to load guest memory", e.FaultMessage);
        Assert.Contains("Loading snapshot failed", e.OutputTail);
        AssertNothingLeft(root, "r1");
    }

    [Fact]
    public async Task A_state_file_of_another_data_version_fails_at_snapshot_load_and_leaves_nothing()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        var text = await File.ReadAllTextAsync(snapshot.StatePath, Ct);
        var firstLine = text[..text.IndexOf('\n', StringComparison.Ordinal)];
        await File.WriteAllTextAsync(snapshot.StatePath, text.Replace(firstLine, firstLine[..firstLine.LastIndexOf(' ')] + " v9.0.0", StringComparison.Ordinal), Ct);

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1"),
            new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct));

        Assert.Equal("snapshot-load", e.Step);
        Assert.Contains("Invalid data version: 9.0.0", e.FaultMessage);
        AssertNothingLeft(root, "r1");
    }

    [Fact]
    public async Task A_vmm_that_dies_during_the_load_fails_the_restore_and_leaves_no_process_or_file()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        var knobs = new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "PUT /snapshot/load", ["FAKE_FC_EXIT_CODE"] = "9" };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1", knobs),
            new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct));

        Assert.Equal("snapshot-load", e.Step);
        AssertNothingLeft(root, "r1");
    }

    [Fact]
    public async Task A_drive_binding_without_a_target_fails_half_way_after_the_spawn_and_leaves_nothing()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        var restore = new RestoreOptions
        {
            VsockUdsPath = root.Combine("r1", "v.sock"),
            DriveBindings = [new DriveBinding(root.Combine("no-such-drive.img"), root.Combine("data.img"))],
        };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.RestoreAsync(snapshot, SnapshotFixture.OptionsIn(root, "r1"), restore, Ct));

        Assert.Equal("drive-bindings", e.Step);
        Assert.IsType<IOException>(e.InnerException);
        AssertNothingLeft(root, "r1");
    }
    [Fact]
    public async Task A_detached_restore_takes_serial_input_through_its_fifo_also_after_another_microvm_attaches()
    {
        using var root = new TempRoot();
        var snapshot = await SnapshotFixture.TakeAsync(root, Ct);
        var options = SnapshotFixture.OptionsIn(root, "r1") with
        {
            Ownership = Kiln.Vmm.VmmOwnership.Detached,
            ConsoleInputPath = root.Combine("r1", "console.in"),
        };

        var vm = await Microvm.RestoreAsync(snapshot, options, new RestoreOptions { VsockUdsPath = root.Combine("r1", "v.sock") }, Ct);
        var identity = vm.Identity;
        try
        {
            Assert.True(Kiln.Interop.FileNodes.IsFifo(options.ConsoleInputPath));
            await vm.Console.WriteLineAsync("typed into a restored guest", Ct);
            await Eventually.FileContainsAsync(options.ConsolePath!, "serial input: typed into a restored guest", TimeSpan.FromSeconds(30));
        }
        finally
        {
            await vm.DisposeAsync(); // detached: the VMM runs on
        }

        await using var attached = Microvm.TryAttach(identity, options, MicrovmState.Running);
        Assert.NotNull(attached);
        await attached.Console.WriteLineAsync("and after the attach", Ct);
        await Eventually.FileContainsAsync(options.ConsolePath!, "serial input: and after the attach", TimeSpan.FromSeconds(30));
        await attached.StopAsync(ShutdownPlan.Kill(), Ct);
        Assert.Empty(ProcessScan.WithCommandLineContaining(root.Combine("r1", "fc.sock")));
    }
}
