// Template clones under the jailer, driven by the Kata-style driver: each clone sandbox runs in its own chroot with
// its own drive copies at the paths the snapshot recorded, answers on its own vsock, stops alone (its chroot and
// cgroups going with it), restarts, and clean-up leaves nothing. On fake-jailer + the stand-in always; on the real
// jailer + Firecracker with the VM tier's guest (KILN_JAILER, KILN_FIRECRACKER, /dev/kvm, KILN_TEST_KERNEL, ...),
// skipped with the reason otherwise.
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vm.Templates;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

public sealed class JailedCloneTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static HypervisorConfig Clone(TempRoot root, SandboxTarget target, JailTestScope scope, MicrovmTemplate template) =>
        target.Config(root, poolSize: 0) with
        {
            FirecrackerPath = scope.FirecrackerPath,
            KernelPath = root.Combine("no-kernel-needed"),
            Restore = SandboxRestore.FromTemplate(template.Directory),
            Jail = scope.Settings(),
        };

    private static async Task<string> EchoAsync(FirecrackerHypervisor driver, SandboxTarget target, string text)
    {
        var vsock = Assert.Single(driver.Devices.OfType<VsockDevice>());
        return await VsockProbe.EchoAsync(vsock.UdsPath, target.VsockEchoPort!.Value, text, Ct);
    }

    private static JailLayout Layout(HypervisorConfig config, string id) => JailLayout.For(config.Jail!, config.FirecrackerPath, id);

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task Three_jailed_clones_each_write_their_own_drive_answer_on_their_own_vsock_and_one_stops_alone(string targetName)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(targetName);
        using var root = new TempRoot();
        var target = scope.IsReal ? SandboxTarget.Real() : SandboxTarget.Fake(root);
        await using var source = new FirecrackerHypervisor();
        await source.CreateAsync("src", target.Config(root) with { FirecrackerPath = scope.FirecrackerPath }, Ct);
        await source.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "src", "vsock.sock")), Ct);
        await source.StartAsync(Ct);
        await GuestConsole.WaitForAsync(source, target.ReadyPattern, target.BootTimeout);
        var template = await new TemplateStore(root.Combine("templates")).CreateAsync("base", source.Vm!, Ct);
        await source.StopAsync(Ct);

        var clones = new List<FirecrackerHypervisor>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var clone = new FirecrackerHypervisor();
                clones.Add(clone);
                await clone.CreateAsync($"c{i}", Clone(root, target, scope, template), Ct);
                await clone.StartAsync(Ct);
            }
            // The plain source recorded its pool placeholder at its host path: inside each chroot that is the clone's copy.
            var recorded = root.Combine("sb", "src", "pool-0.img");
            var original = await File.ReadAllBytesAsync(recorded, Ct);
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(SandboxState.Running, clones[i].State);
                Assert.Equal(Layout(clones[i].Config, $"c{i}").ExecutableInJail, Kiln.Host.ProcFs.TryGetExecutable(clones[i].Pid!.Value));
                if (target.VsockEchoPort is not null)
                    Assert.Equal($"clone {i}", await EchoAsync(clones[i], target, $"clone {i}"));
                await File.WriteAllTextAsync($"/proc/{clones[i].Pid}/root{recorded}", $"written by c{i}", Ct);
            }
            for (var i = 0; i < 3; i++)
                Assert.Equal($"written by c{i}", await File.ReadAllTextAsync(Path.Combine(clones[i].SandboxDirectory, "drive-drive_0"), Ct));
            Assert.Equal(original, await File.ReadAllBytesAsync(recorded, Ct));

            await clones[1].StopAsync(Ct);

            Assert.Equal(SandboxState.Stopped, clones[1].State);
            Assert.False(Directory.Exists(Layout(clones[1].Config, "c1").InstanceDirectory));
            foreach (var i in new[] { 0, 2 })
            {
                Assert.Equal(SandboxState.Running, clones[i].State);
                if (target.VsockEchoPort is not null)
                    Assert.Equal("still here", await EchoAsync(clones[i], target, "still here"));
            }
        }
        finally
        {
            await SandboxTeardown.StopAllAsync(clones);
        }
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
        Assert.Empty(Directory.EnumerateDirectories(scope.Base).Where(d => Path.GetFileName(d) != "files").SelectMany(Directory.EnumerateDirectories));
    }

    [Fact]
    public async Task A_jailed_clone_of_a_jailed_sandboxs_template_restarts_in_a_fresh_chroot_and_is_cleaned_away()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        await using var source = new FirecrackerHypervisor();
        await source.CreateAsync("src", target.Config(root) with { FirecrackerPath = scope.FirecrackerPath, Jail = scope.Settings() }, Ct);
        await source.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "src", "vsock.sock")), Ct);
        await source.StartAsync(Ct);
        await GuestConsole.WaitForAsync(source, target.ReadyPattern, target.BootTimeout);
        var template = await new TemplateStore(root.Combine("templates")).CreateAsync("jailed", source.Vm!, Ct);
        await source.StopAsync(Ct);
        await source.CleanupAsync(Ct);
        Assert.True(template.Manifest.Jailed);

        await using var clone = new FirecrackerHypervisor();
        var config = Clone(root, target, scope, template);
        await clone.CreateAsync("c0", config, Ct);
        await clone.StartAsync(Ct);
        var firstPid = clone.Pid;
        Assert.Equal("/drives/drive_0", (await clone.Api!.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == "drive_0").PathOnHost);
        Assert.Equal("first", await EchoAsync(clone, target, "first"));

        await clone.StopAsync(Ct);
        Assert.False(Directory.Exists(Layout(config, "c0").InstanceDirectory));
        await clone.StartAsync(Ct);

        Assert.Equal(SandboxState.Running, clone.State);
        Assert.NotEqual(firstPid, clone.Pid);
        Assert.Equal("again", await EchoAsync(clone, target, "again"));
        var info = await SandboxCatalog.GetAsync(root.Combine("sb"), "c0", Ct);
        Assert.Equal((SandboxState.Running, clone.Pid), (info.State, info.Pid));
        Assert.NotNull(info.Config.Jail);
        await clone.StopAsync(Ct);
        await clone.CleanupAsync(Ct);

        Assert.False(Directory.Exists(Layout(config, "c0").InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task A_snapshot_restored_under_a_jail_finds_each_drive_at_its_recorded_path_in_the_chroot_and_writes_only_its_own_copy(string targetName)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(targetName);
        using var root = new TempRoot();
        var target = scope.IsReal ? SandboxTarget.Real() : SandboxTarget.Fake(root);
        Kiln.Sandbox.SandboxSnapshot snapshot;
        Kiln.Api.Drive[] drives;
        await using (var source = new FirecrackerHypervisor())
        {
            await source.CreateAsync("src", target.Config(root, poolSize: 1) with { FirecrackerPath = scope.FirecrackerPath }, Ct);
            await source.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "src", "vsock.sock")), Ct);
            await source.StartAsync(Ct);
            await GuestConsole.WaitForAsync(source, target.ReadyPattern, target.BootTimeout);
            drives = [.. source.Vm!.Description!.Drives];
            await source.PauseAsync(Ct);
            snapshot = await source.SaveAsync(Ct);
            await source.StopAsync(Ct);
        }
        // Each writable drive gets a copy of this restore's own; read-only ones are shared as they are.
        var bindings = drives.Select(d => d.IsReadOnly == true
            ? new Kiln.Vm.DriveBinding(d.PathOnHost!, d.PathOnHost!) { ReadOnly = true }
            : new Kiln.Vm.DriveBinding(d.PathOnHost!, root.Combine($"copy-{d.DriveId}.img"))).ToArray();
        foreach (var b in bindings.Where(b => !b.ReadOnly))
            File.Copy(b.RecordedPath, b.Source);
        var pool = Assert.Single(drives, d => d.DriveId == "drive_0").PathOnHost!;
        var original = await File.ReadAllBytesAsync(pool, Ct);
        var config = target.Config(root, poolSize: 0) with
        {
            FirecrackerPath = scope.FirecrackerPath,
            KernelPath = root.Combine("no-kernel-needed"),
            Restore = SandboxRestore.FromSnapshot(snapshot.StatePath, snapshot.MemoryPath) with { Drives = bindings },
            Jail = scope.Settings(),
        };
        await using (var restored = new FirecrackerHypervisor())
        {
            await restored.CreateAsync("copy", config, Ct);
            await restored.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "copy", "vsock.sock")), Ct);
            await restored.StartAsync(Ct);

            Assert.Equal(SandboxState.Running, restored.State);
            Assert.Equal(Layout(restored.Config, "copy").ExecutableInJail, Kiln.Host.ProcFs.TryGetExecutable(restored.Pid!.Value));
            if (target.VsockEchoPort is not null)
                Assert.Equal("restored", await EchoAsync(restored, target, "restored"));
            await File.WriteAllTextAsync($"/proc/{restored.Pid}/root{pool}", "written by the restore", Ct);
            Assert.Equal("written by the restore", await File.ReadAllTextAsync(root.Combine("copy-drive_0.img"), Ct));
            Assert.Equal(original, await File.ReadAllBytesAsync(pool, Ct));

            await restored.StopAsync(Ct);

            Assert.False(Directory.Exists(Layout(restored.Config, "copy").InstanceDirectory));
            await restored.CleanupAsync(Ct);
        }
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
    }

    [Fact]
    public async Task Drive_bindings_for_a_template_clone_or_with_a_relative_recorded_path_are_refused_at_create_naming_the_property()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root, poolSize: 0);
        var binding = new Kiln.Vm.DriveBinding("/srv/disk.img", root.Combine("disk.img"));
        await using var driver = new FirecrackerHypervisor();

        var forTemplate = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.CreateAsync("t",
            config with { Restore = SandboxRestore.FromTemplate(root.Combine("templates", "t")) with { Drives = [binding] } }, Ct));
        var relative = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.CreateAsync("t",
            config with { Restore = SandboxRestore.FromSnapshot(root.Combine("s"), root.Combine("m")) with { Drives = [binding with { RecordedPath = "srv/../disk.img" }] } }, Ct));
        var twice = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.CreateAsync("t",
            config with { Restore = SandboxRestore.FromSnapshot(root.Combine("s"), root.Combine("m")) with { Drives = [binding, binding] } }, Ct));

        Assert.Equal("Restore.Drives", forTemplate.PropertyName);
        Assert.Equal("Restore.Drives", relative.PropertyName);
        Assert.Contains("srv/../disk.img", relative.Message);
        Assert.Equal("Restore.Drives", twice.PropertyName);
        Assert.Contains("twice", twice.Message);
    }
}
