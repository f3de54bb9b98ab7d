// Restore under the jailer, at the Vm layer, on fake-jailer + the stand-in (these lean on its pretend guest and fault
// knobs; the real pair runs the Sandbox-level JailedCloneTests): the snapshot files enter the chroot as shared files
// (a hard link that leaves the template's inode as it was, or a copy when the jail cannot read it), each drive is at
// the path the snapshot recorded inside the chroot, and every failure — a missing memory file, a load the stand-in
// refuses, a VMM that dies or is killed during the load — leaves no process, chroot, mount, cgroup or clone file.
using Kiln.Host;
using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vm.Templates;
using Kiln.Vmm;

namespace Kiln.Tests.Vm;

public sealed class JailedRestoreTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A plain source VM (files in <paramref name="root"/>, on the chroot base's file system) and its template.</summary>
    private static async Task<(Microvm Source, MicrovmTemplate Template)> PlainTemplateAsync(TempRoot root)
    {
        var source = await Microvm.BootAsync(SnapshotFixture.DescriptionWithVsock(root), MicrovmFixture.Options(root), Ct);
        return (source, await new TemplateStore(root.Combine("templates")).CreateAsync("base", source, Ct));
    }

    private static TemplateCloneOptions JailedClone(JailTestScope scope, TempRoot root, int i, Dictionary<string, string>? knobs = null) => new()
    {
        Microvm = SnapshotFixture.OptionsIn(root, $"c{i}", knobs) with { FirecrackerPath = scope.FirecrackerPath, Id = $"{scope.Id}-{i}", WorkingDirectory = null },
        Directory = root.Combine($"c{i}"),
        Jail = scope.Settings(withLimits: false),
    };

    private static JailLayout Layout(JailTestScope scope, int i) => JailLayout.For(scope.Settings(), scope.FirecrackerPath, $"{scope.Id}-{i}");

    private static void AssertNothingLeft(JailTestScope scope, TempRoot root, int i)
    {
        Assert.False(Directory.Exists(Layout(scope, i).InstanceDirectory));
        Assert.Null(JailedVmm.FindLiveUser(Layout(scope, i)));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
        Assert.True(!Directory.Exists(root.Combine($"c{i}")) || Directory.GetFileSystemEntries(root.Combine($"c{i}")).Length == 0,
            string.Join(", ", Directory.Exists(root.Combine($"c{i}")) ? Directory.GetFileSystemEntries(root.Combine($"c{i}")) : []));
    }

    [Fact]
    public async Task A_jailed_clone_runs_answers_on_vsock_and_sees_the_snapshot_files_as_hard_links_the_template_keeps_unchanged()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (source, template) = await PlainTemplateAsync(root);
        await using var _source = source;
        var memory = template.Snapshot.MemoryPath;
        var before = Kiln.Interop.LibC.Stat(memory);

        var clone = JailedClone(scope, root, 0);
        var vm = await template.StartCloneAsync(clone, Ct);
        try
        {
            Assert.Equal(MicrovmState.Running, vm.State);
            Assert.Equal(Layout(scope, 0).ExecutableInJail, ProcFs.TryGetExecutable(vm.Pid));
            Assert.Equal("jailed", await VsockProbe.EchoAsync(clone.VsockPath, SnapshotFixture.EchoPort, "jailed", Ct));
            // One inode: the clone maps the template's memory file itself (pages shared), which stays root's and as it was.
            var inJail = Assert.Single(vm.Jail!.Files, f => f.PathInJail == "/snapshot/mem");
            Assert.Equal(JailFileExposure.HardLink, inJail.Method);
            Assert.Equal(new FileInfo(memory).Length, new FileInfo($"/proc/{vm.Pid}/root/snapshot/mem").Length);
            Assert.Equal(before, Kiln.Interop.LibC.Stat(memory));
            // The plain source recorded host paths: they are recreated inside the chroot, the writable one the clone's copy.
            var recorded = root.Combine("data.img");
            await File.WriteAllTextAsync($"/proc/{vm.Pid}/root{recorded}", "written by the jailed clone", Ct);
            Assert.Equal("written by the jailed clone", await File.ReadAllTextAsync(clone.DrivePath("data"), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync(recorded, Ct));
            Assert.Equal("not a filesystem", await File.ReadAllTextAsync($"/proc/{vm.Pid}/root{root.Combine("rootfs.ext4")}", Ct));
            Assert.Equal("/vsock.sock", (await vm.Client.GetExportVmConfigAsync(Ct)).Vsock!.UdsPath);
        }
        finally
        {
            await vm.DisposeAsync();
        }
        await vm.CleanupJailAsync(Ct);
        template.RemoveCloneFiles(clone);

        AssertNothingLeft(scope, root, 0);
        Assert.Equal(before, Kiln.Interop.LibC.Stat(memory));
    }

    [Fact]
    public async Task A_memory_file_the_jail_cannot_read_is_copied_into_the_chroot_and_the_templates_file_keeps_its_owner_and_mode()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (source, template) = await PlainTemplateAsync(root);
        await using var _source = source;
        var memory = template.Snapshot.MemoryPath;
        File.SetUnixFileMode(memory, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var before = Kiln.Interop.LibC.Stat(memory);

        var vm = await template.StartCloneAsync(JailedClone(scope, root, 0), Ct);
        await using (vm)
        {
            Assert.Equal(MicrovmState.Running, vm.State);
            var inJail = Assert.Single(vm.Jail!.Files, f => f.PathInJail == "/snapshot/mem");
            Assert.Equal(JailFileExposure.Copy, inJail.Method);
            Assert.Equal((JailTestScope.Uid, JailTestScope.Gid), Kiln.Interop.LibC.Stat(inJail.PathOnHost) is { } st ? (st.Uid, st.Gid) : default);
        }
        await vm.CleanupJailAsync(Ct);

        Assert.Equal(before, Kiln.Interop.LibC.Stat(memory));
    }

    [Fact]
    public async Task A_template_of_a_jailed_vm_records_paths_inside_its_chroot_and_is_cloned_only_under_a_jail()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var description = SnapshotFixture.DescriptionWithVsock(root) with { Jail = scope.Settings(withLimits: false) };
        var source = await Microvm.BootAsync(description, MicrovmFixture.Options(root) with { FirecrackerPath = scope.FirecrackerPath, Id = scope.Id, WorkingDirectory = null }, Ct);
        MicrovmTemplate template;
        try
        {
            template = await new TemplateStore(root.Combine("templates")).CreateAsync("jailed", source, Ct);
        }
        finally
        {
            await source.DisposeAsync();
            await source.CleanupJailAsync(Ct);
        }

        Assert.True(template.Manifest.Jailed);
        Assert.Equal([("rootfs", "/drives/rootfs", root.Combine("rootfs.ext4")), ("data", "/drives/data", null)],
            template.Manifest.Drives.Select(d => (d.DriveId, d.RecordedPath, d.SharedPath)));
        // The snapshot files are the template's (this process's), readable by any jail, not the source jail's uid.
        Assert.Equal(0u, Kiln.Interop.LibC.Stat(template.Snapshot.MemoryPath)!.Value.Uid);
        var unjailed = new TemplateCloneOptions { Microvm = SnapshotFixture.OptionsIn(root, "plain"), Directory = root.Combine("plain") };
        var plain = await Assert.ThrowsAsync<TemplateMismatchException>(() => template.StartCloneAsync(unjailed, Ct));
        Assert.Equal(TemplateMismatchKind.NeedsJail, plain.Kind);

        var clones = await template.StartClonesAsync(2, i => JailedClone(scope, root, i), cancellationToken: Ct);
        try
        {
            for (var i = 0; i < clones.Count; i++)
            {
                Assert.Equal(MicrovmState.Running, clones[i].State);
                Assert.Equal($"clone {i}", await VsockProbe.EchoAsync(JailedClone(scope, root, i).VsockPath, SnapshotFixture.EchoPort, $"clone {i}", Ct));
            }
            await File.WriteAllTextAsync($"/proc/{clones[0].Pid}/root/drives/data", "mine", Ct);
            Assert.Equal("mine", await File.ReadAllTextAsync(JailedClone(scope, root, 0).DrivePath("data"), Ct));
            Assert.Equal("data", await File.ReadAllTextAsync($"/proc/{clones[1].Pid}/root/drives/data", Ct));
        }
        finally
        {
            foreach (var vm in clones)
            {
                await vm.DisposeAsync();
                await vm.CleanupJailAsync(Ct);
            }
        }
        for (var i = 0; i < clones.Count; i++)
        {
            template.RemoveCloneFiles(JailedClone(scope, root, i));
            AssertNothingLeft(scope, root, i);
        }
    }

    [Fact]
    public async Task A_jailed_restore_without_its_memory_file_fails_at_snapshot_files_and_leaves_nothing()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (source, template) = await PlainTemplateAsync(root);
        await using var _source = source;
        var clone = JailedClone(scope, root, 0);
        var snapshot = new SnapshotFiles(template.Snapshot.StatePath, root.Combine("gone.mem"));

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.RestoreAsync(snapshot, clone.Microvm,
            new RestoreOptions { Jail = clone.Jail, VsockUdsPath = clone.VsockPath }, Ct));

        Assert.Equal("snapshot-files", e.Step);
        Assert.Contains("gone.mem", e.Message);
        AssertNothingLeft(scope, root, 0);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("exit")]
    public async Task A_jailed_clone_whose_load_fails_is_killed_and_its_jail_and_files_removed(string how)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (source, template) = await PlainTemplateAsync(root);
        await using var _source = source;
        var knobs = how == "exit" ? new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "PUT /snapshot/load" } : null;
        var clone = JailedClone(scope, root, 0, knobs);
        var snapshot = template.Snapshot;
        if (how == "truncated")
        {
            // The stand-in refuses a memory file smaller than the guest's memory, as Firecracker does (09-snapshot-load).
            var small = root.Combine("small.mem");
            await File.WriteAllBytesAsync(small, new byte[4096], Ct);
            snapshot = snapshot with { MemoryPath = small };
        }
        var restore = new RestoreOptions
        {
            Jail = clone.Jail,
            VsockUdsPath = clone.VsockPath,
            DriveBindings = [new DriveBinding(root.Combine("rootfs.ext4"), root.Combine("rootfs.ext4")) { ReadOnly = true }],
        };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.RestoreAsync(snapshot, clone.Microvm, restore, Ct));

        Assert.Equal("snapshot-load", e.Step);
        if (how == "truncated")
            Assert.Contains("Total sum of memory regions exceeds largest possible file offset", e.Message + e.FaultMessage);
        AssertNothingLeft(scope, root, 0);
        Assert.Equal("not a filesystem", await File.ReadAllTextAsync(root.Combine("rootfs.ext4"), Ct));
    }

    [Fact]
    public async Task A_jailed_clone_killed_during_its_load_fails_at_snapshot_load_and_leaves_nothing()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (source, template) = await PlainTemplateAsync(root);
        await using var _source = source;
        var clone = JailedClone(scope, root, 0, new Dictionary<string, string> { ["FAKE_FC_HANG"] = "PUT /snapshot/load" });

        var start = template.StartCloneAsync(clone, Ct);
        var log = Layout(scope, 0).OnHost("/firecracker.log");
        await Eventually.TrueAsync(() => start.IsCompleted || (File.Exists(log) && File.ReadAllText(log).Contains("/snapshot/load", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), "the jailed VMM receives the load");
        Assert.False(start.IsCompleted);
        var pid = JailedVmm.FindLiveUser(Layout(scope, 0)) ?? throw new InvalidOperationException("no jailed VMM");
        var vmm = VmmProcess.TryAttach(ProcFs.TryGetIdentity(pid)!, "/dev/null")!;
        await using (vmm)
            await vmm.KillAsync(Ct);

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => start);

        Assert.Equal("snapshot-load", e.Step);
        AssertNothingLeft(scope, root, 0);
    }
}
