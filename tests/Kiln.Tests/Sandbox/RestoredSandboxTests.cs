// Sandboxes restored instead of booted: template clones and snapshot restores driven by the Kata-style driver, so
// that stop, re-attach, restart and clean-up treat them as any sandbox. On the stand-in always; on real Firecracker
// with the VM tier's guest (KILN_FIRECRACKER, /dev/kvm, KILN_TEST_KERNEL, ...), skipped with the reason otherwise.
using System.Text.Json.Nodes;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vm.Templates;

namespace Kiln.Tests.Sandbox;

public sealed class RestoredSandboxTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Boots a source sandbox with a vsock device, waits for its guest, and makes template "base" of it.</summary>
    private static async Task<(FirecrackerHypervisor Source, MicrovmTemplate Template)> TemplateAsync(TempRoot root, SandboxTarget target)
    {
        var source = new FirecrackerHypervisor();
        await source.CreateAsync("src", target.Config(root), Ct);
        await source.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "src", "vsock.sock")), Ct);
        await source.StartAsync(Ct);
        await GuestConsole.WaitForAsync(source, target.ReadyPattern, target.BootTimeout);
        var template = await new TemplateStore(root.Combine("templates")).CreateAsync("base", source.Vm!, Ct);
        return (source, template);
    }

    private static HypervisorConfig Restored(TempRoot root, SandboxTarget target, SandboxRestore restore) => target.Config(root, poolSize: 0) with
    {
        KernelPath = root.Combine("no-kernel-needed"),
        Restore = restore,
    };

    private static async Task<string> EchoAsync(FirecrackerHypervisor driver, SandboxTarget target, string text)
    {
        var vsock = Assert.Single(driver.Devices.OfType<VsockDevice>());
        return await VsockProbe.EchoAsync(vsock.UdsPath, target.VsockEchoPort!.Value, text, Ct);
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task Template_clones_are_sandboxes_that_answer_on_their_own_vsock_stop_alone_reattach_and_restart(string targetName)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.For(targetName, root);
        var (source, template) = await TemplateAsync(root, target);
        await using var _source = source;
        await using var c0 = new FirecrackerHypervisor();
        await using var c1 = new FirecrackerHypervisor();
        await c0.CreateAsync("c0", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)), Ct);
        await c1.CreateAsync("c1", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)), Ct);

        await c0.StartAsync(Ct);
        await c1.StartAsync(Ct);

        Assert.Equal(SandboxState.Running, c0.State);
        Assert.Equal(SandboxState.Running, c1.State);
        Assert.NotEqual(c0.Pid, c1.Pid);
        Assert.True(c0.IsRestored);
        Assert.Equal(Path.Combine(c0.SandboxDirectory, "vsock.sock"), Assert.Single(c0.Devices.OfType<VsockDevice>()).UdsPath);
        if (target.VsockEchoPort is not null)
        {
            Assert.Equal("to c0", await EchoAsync(c0, target, "to c0"));
            Assert.Equal("to c1", await EchoAsync(c1, target, "to c1"));
        }

        // Another driver (the CLI, say) re-attaches to a clone and reads what it was restored from.
        await using (var reattached = await FirecrackerHypervisor.OpenAsync(root.Combine("sb"), "c1", cancellationToken: Ct))
        {
            Assert.Equal(SandboxState.Running, reattached.State);
            Assert.Equal(c1.Pid, reattached.Pid);
            Assert.Equal(template.Directory, reattached.Config.Restore!.TemplateDirectory);
        }
        var info = await SandboxCatalog.GetAsync(root.Combine("sb"), "c0", Ct);
        Assert.Equal("template base", info.Config.Restore!.Describe());

        await c0.StopAsync(Ct);

        Assert.Equal(SandboxState.Stopped, c0.State);
        Assert.Equal(SandboxState.Running, c1.State);
        Assert.Equal(SandboxState.Running, source.State);
        if (target.VsockEchoPort is not null)
            Assert.Equal("still here", await EchoAsync(c1, target, "still here"));

        // A restart clones the template again (fresh drive copies), it does not boot a kernel.
        await c0.StartAsync(Ct);
        Assert.Equal(SandboxState.Running, c0.State);
        if (target.VsockEchoPort is not null)
            Assert.Equal("again", await EchoAsync(c0, target, "again"));

        await c0.StopAsync(Ct);
        await c0.CleanupAsync(Ct);
        Assert.False(Directory.Exists(c0.SandboxDirectory));
        Assert.Empty(ProcessScan.WithCommandLineContaining(Path.Combine(c0.SandboxDirectory, "firecracker.sock")));
    }

    [Fact]
    public async Task Each_clone_sandbox_writes_to_its_own_copy_of_a_writable_drive()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var (source, template) = await TemplateAsync(root, target);
        await using var _source = source;
        await using var c0 = new FirecrackerHypervisor();
        await using var c1 = new FirecrackerHypervisor();
        await c0.CreateAsync("c0", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)), Ct);
        await c1.CreateAsync("c1", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)), Ct);
        await c0.StartAsync(Ct);
        await c1.StartAsync(Ct);
        // The source's pool placeholders are its writable drives: each clone has its own copy at the recorded path.
        var recorded = root.Combine("sb", "src", "pool-0.img");
        var original = await File.ReadAllBytesAsync(recorded, Ct);

        await File.WriteAllTextAsync($"/proc/{c0.Pid}/root{recorded}", "written by c0", Ct);

        Assert.Equal("written by c0", await File.ReadAllTextAsync(Path.Combine(c0.SandboxDirectory, "drive-drive_0"), Ct));
        Assert.Equal(original, await File.ReadAllBytesAsync($"/proc/{c1.Pid}/root{recorded}", Ct));
        Assert.Equal(original, await File.ReadAllBytesAsync(recorded, Ct));
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_snapshot_of_one_sandbox_restores_into_another_paused_with_its_own_vsock_socket(string targetName)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.For(targetName, root);
        SandboxSnapshot snapshot;
        await using (var source = new FirecrackerHypervisor())
        {
            await source.CreateAsync("src", target.Config(root), Ct);
            await source.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "src", "vsock.sock")), Ct);
            await source.StartAsync(Ct);
            await GuestConsole.WaitForAsync(source, target.ReadyPattern, target.BootTimeout);
            await source.PauseAsync(Ct);
            snapshot = await source.SaveAsync(Ct);
            await source.StopAsync(Ct);
        }
        await using var restored = new FirecrackerHypervisor();
        await restored.CreateAsync("copy", Restored(root, target, SandboxRestore.FromSnapshot(snapshot.StatePath, snapshot.MemoryPath) with
        {
            Resume = false,
            TrackDirtyPages = true,
        }), Ct);
        await restored.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "copy", "vsock.sock")), Ct);

        await restored.StartAsync(Ct);

        Assert.Equal(SandboxState.Paused, restored.State);
        Assert.Equal(SandboxState.Paused, (await SandboxCatalog.GetAsync(root.Combine("sb"), "copy", Ct)).State);
        await restored.ResumeAsync(Ct);
        Assert.Equal(SandboxState.Running, restored.State);
        if (target.VsockEchoPort is not null)
            Assert.Equal("restored", await EchoAsync(restored, target, "restored"));
        Assert.Equal(snapshot.StatePath, restored.Config.Restore!.SnapshotStatePath);

        // Restored with dirty-page tracking: a diff snapshot of it can be taken, beside (not over) the full one.
        await restored.PauseAsync(Ct);
        var diff = await restored.SaveDiffAsync(Ct);
        Assert.Equal(restored.DiffSnapshotStatePath, diff.StatePath);
        Assert.True(File.Exists(diff.StatePath));
        Assert.Equal(new FileInfo(snapshot.MemoryPath).Length, new FileInfo(diff.MemoryPath).Length);
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_snapshot_restored_with_a_drive_binding_writes_its_own_copy_while_the_source_keeps_running_on_the_original(string targetName)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.For(targetName, root);
        await using var source = new FirecrackerHypervisor();
        await source.CreateAsync("src", target.Config(root, poolSize: 1), Ct);
        await source.StartAsync(Ct);
        await GuestConsole.WaitForAsync(source, target.ReadyPattern, target.BootTimeout);
        await source.PauseAsync(Ct);
        var snapshot = await source.SaveAsync(Ct);
        await source.ResumeAsync(Ct);
        var pool = root.Combine("sb", "src", "pool-0.img");
        var copy = root.Combine("copy-pool.img");
        File.Copy(pool, copy);
        var original = await File.ReadAllBytesAsync(pool, Ct);
        await using var restored = new FirecrackerHypervisor();
        await restored.CreateAsync("copy", Restored(root, target, SandboxRestore.FromSnapshot(snapshot.StatePath, snapshot.MemoryPath) with
        {
            Drives = [new Kiln.Vm.DriveBinding(pool, copy)],
        }), Ct);

        await restored.StartAsync(Ct);

        // The restored VMM's mount namespace has the copy over the recorded path; the host's (and the source's) has not.
        await File.WriteAllTextAsync($"/proc/{restored.Pid}/root{pool}", "written by the restore", Ct);
        Assert.Equal("written by the restore", await File.ReadAllTextAsync(copy, Ct));
        Assert.Equal(original, await File.ReadAllBytesAsync(pool, Ct));
        Assert.Equal(SandboxState.Running, source.State);
        var persisted = await SandboxCatalog.GetAsync(root.Combine("sb"), "copy", Ct);
        Assert.Equal(copy, Assert.Single(persisted.Config.Restore!.Drives).Source);
    }

    [Fact]
    public async Task A_diff_snapshot_of_a_running_sandbox_is_refused_naming_the_state()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("run", target.Config(root), Ct);
        await driver.StartAsync(Ct);

        var e = await Assert.ThrowsAsync<SandboxStateException>(() => driver.SaveDiffAsync(Ct));

        Assert.Equal(SandboxState.Running, e.Actual);
    }

    [Fact]
    public async Task A_template_of_another_firecracker_release_fails_the_start_at_step_template_and_leaves_the_sandbox_Created()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var (source, template) = await TemplateAsync(root, target);
        await using var _source = source;
        var manifestPath = Path.Combine(template.Directory, "template.json");
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(manifestPath, Ct))!;
        manifest["firecracker_version"] = "1.15.0";
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString(), Ct);
        await using var clone = new FirecrackerHypervisor();
        await clone.CreateAsync("c0", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)), Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => clone.StartAsync(Ct));

        Assert.Equal("template", e.Step);
        Assert.Contains("1.15.0", e.Message);
        Assert.Equal(SandboxState.Created, clone.State);
        Assert.Equal(SandboxState.Created, (await SandboxCatalog.GetAsync(root.Combine("sb"), "c0", Ct)).State);
        Assert.Empty(ProcessScan.WithCommandLineContaining(Path.Combine(clone.SandboxDirectory, "firecracker.sock")));
    }

    [Fact]
    public async Task A_clone_hot_plugs_through_its_own_copies_of_the_templates_placeholders()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var (source, template) = await TemplateAsync(root, target); // the source has a pool of 2
        await using var _source = source;
        await using var clone = new FirecrackerHypervisor();
        await clone.CreateAsync("c0", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)) with { BlockPoolSize = 2 }, Ct);
        await clone.StartAsync(Ct);
        var disk = root.Combine("disk.img");
        await File.WriteAllBytesAsync(disk, new byte[4096], Ct);

        var added = Assert.IsType<BlockHotplugResult>(await clone.HotplugAddAsync(new BlockDevice(disk), Ct));
        var plugged = (await clone.Vm!.Client.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == added.DriveId).PathOnHost;
        await clone.HotplugRemoveAsync(new BlockDevice(disk), Ct);
        var unplugged = (await clone.Vm!.Client.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == added.DriveId).PathOnHost;

        Assert.Equal((0, "drive_0"), (added.Slot, added.DriveId));
        Assert.Equal(source.PoolSlots[0].GuestDevice, added.GuestDevice);
        Assert.Equal(disk, plugged);
        // Back to the clone's own copy of the placeholder, never the source's file.
        Assert.Equal(Path.Combine(clone.SandboxDirectory, "drive-drive_0"), unplugged);
        Assert.All(clone.PoolSlots, s => Assert.Null(s.HostPath));
        Assert.Null(source.PoolSlots[0].HostPath);
    }

    [Fact]
    public async Task A_clone_asking_for_a_bigger_pool_than_the_template_has_fails_at_step_template_and_stays_Created()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var (source, template) = await TemplateAsync(root, target);
        await using var _source = source;
        await using var clone = new FirecrackerHypervisor();
        await clone.CreateAsync("c0", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)) with { BlockPoolSize = 3 }, Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => clone.StartAsync(Ct));

        Assert.Equal("template", e.Step);
        Assert.Contains("drive_2", e.Message);
        Assert.Equal(SandboxState.Created, clone.State);
    }

    [Fact]
    public async Task A_clone_whose_vmm_dies_during_the_load_fails_at_snapshot_load_and_leaves_no_process_or_drive_copy()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var (source, template) = await TemplateAsync(root, target);
        await using var _source = source;
        await using var clone = new FirecrackerHypervisor(new FirecrackerHypervisorOptions
        {
            Environment = new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "PUT /snapshot/load" },
        });
        await clone.CreateAsync("c0", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)), Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => clone.StartAsync(Ct));

        Assert.Equal("snapshot-load", e.Step);
        Assert.Equal(SandboxState.Created, clone.State);
        Assert.Null(clone.Pid);
        Assert.Empty(Directory.GetFiles(clone.SandboxDirectory, "drive-*"));
        Assert.Empty(ProcessScan.WithCommandLineContaining(Path.Combine(clone.SandboxDirectory, "firecracker.sock")));
    }

    [Fact]
    public async Task A_restored_sandbox_needs_no_kernel_but_refuses_a_block_pool_and_a_half_given_snapshot_naming_the_property()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var state = root.Combine("s.state");
        var memory = root.Combine("s.mem");
        await using var driver = new FirecrackerHypervisor();

        var pool = await Assert.ThrowsAsync<SandboxConfigurationException>(() =>
            driver.CreateAsync("r", Restored(root, target, SandboxRestore.FromSnapshot(state, memory)) with { BlockPoolSize = 2 }, Ct));
        var half = await Assert.ThrowsAsync<SandboxConfigurationException>(() =>
            driver.CreateAsync("r", Restored(root, target, new SandboxRestore { SnapshotStatePath = state }), Ct));
        var both = await Assert.ThrowsAsync<SandboxConfigurationException>(() =>
            driver.CreateAsync("r", Restored(root, target, SandboxRestore.FromSnapshot(state, memory) with { TemplateDirectory = root.Path }), Ct));

        Assert.Equal("BlockPoolSize", pool.PropertyName);
        Assert.Equal("Restore.SnapshotMemoryPath", half.PropertyName);
        Assert.Equal("Restore", both.PropertyName);
        await driver.CreateAsync("r", Restored(root, target, SandboxRestore.FromSnapshot(state, memory)), Ct);
        Assert.Equal(SandboxState.Created, driver.State);
    }

    [Fact]
    public async Task A_missing_memory_file_fails_the_start_at_snapshot_load_with_firecrackers_fault_and_leaves_the_sandbox_Created()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        SandboxSnapshot snapshot;
        await using (var source = new FirecrackerHypervisor())
        {
            await source.CreateAsync("src", target.Config(root), Ct);
            await source.StartAsync(Ct);
            await source.PauseAsync(Ct);
            snapshot = await source.SaveAsync(Ct);
            await source.StopAsync(Ct);
        }
        File.Delete(snapshot.MemoryPath);
        await using var restored = new FirecrackerHypervisor();
        await restored.CreateAsync("copy", Restored(root, target, SandboxRestore.FromSnapshot(snapshot.StatePath, snapshot.MemoryPath)), Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => restored.StartAsync(Ct));

        Assert.Equal("snapshot-load", e.Step);
        Assert.Contains("Failed to load guest memory", e.FaultMessage);
        Assert.Equal(SandboxState.Created, restored.State);
        Assert.Empty(ProcessScan.WithCommandLineContaining(Path.Combine(restored.SandboxDirectory, "firecracker.sock")));
    }

    [Fact]
    public async Task A_clone_whose_template_was_deleted_can_still_be_stopped_reattached_and_removed_but_not_restarted()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var (source, template) = await TemplateAsync(root, target);
        await using var _source = source;
        await using var clone = new FirecrackerHypervisor();
        await clone.CreateAsync("c0", Restored(root, target, SandboxRestore.FromTemplate(template.Directory)), Ct);
        await clone.StartAsync(Ct);
        Assert.True(new TemplateStore(root.Combine("templates")).Delete("base"));

        // Another driver re-attaches through CreateAsync with the recorded configuration (as kiln stop does).
        await using (var other = new FirecrackerHypervisor())
        {
            await other.CreateAsync("c0", clone.Config, Ct);
            Assert.Equal(SandboxState.Running, other.State);
            await other.StopAsync(Ct);
        }
        var restart = await Assert.ThrowsAsync<SandboxStartException>(() => clone.StartAsync(Ct));
        await clone.CleanupAsync(Ct);

        Assert.Equal("template", restart.Step);
        Assert.Contains("No template 'base'", restart.Message);
        Assert.False(Directory.Exists(clone.SandboxDirectory));
    }
}
