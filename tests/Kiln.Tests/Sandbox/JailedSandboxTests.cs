// The Kata-style driver with a jail: start under the jailer, hot-plug and unplug inside the chroot, re-attach from
// another driver, stop, and clean-up that leaves no tree, mount or cgroup.
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

public sealed class JailedSandboxTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static HypervisorConfig Config(JailTestScope scope) => new()
    {
        FirecrackerPath = scope.FirecrackerPath,
        KernelPath = scope.File("vmlinux"),
        ImagePath = scope.File("rootfs.ext4"),
        VcpuCount = 1,
        MemoryMiB = 128,
        BlockPoolSize = 2,
        // On the chroot base's file system, so that the pool's placeholders can be hard-linked into the jail.
        RootDirectory = Path.Combine(scope.Base, "sb"),
        StopTimeout = TimeSpan.FromSeconds(5),
        Jail = scope.Settings(),
    };

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task A_jailed_sandbox_starts_hot_plugs_inside_the_jail_is_re_attached_stopped_and_cleaned(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        using var root = new TempRoot();
        // The real tier boots the configured guest (skipped with the reason without one), its files bind-mounted into
        // the jail as they need not be on the chroot base's file system.
        var config = !scope.IsReal ? Config(scope) : SandboxTarget.Real().Config(root) with
        {
            RootDirectory = Path.Combine(scope.Base, "sb"),
            Jail = scope.Settings() with { FileExposure = Kiln.Host.JailFileExposure.BindMount },
        };
        var data = scope.File("data.img", "payload");
        await using var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Ownership = VmmOwnership.Detached });
        await driver.CreateAsync(scope.Id, config, Ct);

        await driver.StartAsync(Ct);

        Assert.Equal(SandboxState.Running, driver.State);
        var layout = JailLayout.For(config.Jail!, config.FirecrackerPath, scope.Id);
        Assert.Equal(layout.ExecutableInJail, Kiln.Host.ProcFs.TryGetExecutable(driver.Pid!.Value));
        var drives = (await driver.Api!.GetExportVmConfigAsync(Ct)).Drives!.ToDictionary(d => d.DriveId);
        Assert.Equal("/drives/drive_0", drives["drive_0"].PathOnHost);
        Assert.Equal("/boot/kernel", (await driver.Api.GetExportVmConfigAsync(Ct)).BootSource!.KernelImagePath);

        var added = Assert.IsType<BlockHotplugResult>(await driver.HotplugAddAsync(new BlockDevice(data), Ct));
        Assert.Equal("/hotplug/drive_0", (await driver.Api.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == "drive_0").PathOnHost);
        Assert.Equal("payload", await File.ReadAllTextAsync($"/proc/{driver.Pid}/root/hotplug/drive_0", Ct));

        // Another driver (another process, say) finds the jailed VMM from the state file and unplugs.
        await using (var other = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, scope.Id, cancellationToken: Ct))
        {
            Assert.Equal(SandboxState.Running, other.State);
            Assert.Equal(driver.Pid, other.Pid);
            await other.HotplugRemoveAsync(new BlockDevice(data) { PoolSlot = added.Slot }, Ct);
            Assert.Equal("/drives/drive_0", (await other.Api!.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == "drive_0").PathOnHost);
            Assert.False(File.Exists(layout.OnHost("/hotplug/drive_0")));
            await other.StopAsync(Ct);
            Assert.NotEqual(SandboxState.Running, other.State);
            await other.CleanupAsync(Ct);
        }

        Assert.False(Directory.Exists(layout.InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
        Assert.Equal("payload", await File.ReadAllTextAsync(data, Ct));
    }

    [Fact]
    public async Task A_chroot_base_where_the_jail_cannot_be_made_fails_the_start_typed_and_leaves_no_vmm_cgroup_or_file()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        var config = Config(scope);
        var layout = JailLayout.For(config.Jail!, config.FirecrackerPath, scope.Id);
        // The exec file's directory of the chroot base, read-only: we are root, so only a read-only mount stops us.
        var execDirectory = Directory.CreateDirectory(Path.GetDirectoryName(layout.InstanceDirectory)!).FullName;
        RunMount("-t", "tmpfs", "-o", "size=64k,ro", "kiln-test-ro", execDirectory);
        try
        {
            await using var driver = new FirecrackerHypervisor();
            await driver.CreateAsync(scope.Id, config, Ct);
            var before = Directory.GetFileSystemEntries(scope.Base, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();

            var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

            Assert.Equal("spawn", e.Step);
            Assert.Contains("Read-only file system", e.Message, StringComparison.Ordinal);
            Assert.Contains(layout.InstanceDirectory, e.Message, StringComparison.Ordinal);
            Assert.Equal(SandboxState.Created, driver.State);
            Assert.Null(driver.Pid);
            Assert.Empty(ProcessScan.WithCommandLineContaining(scope.Id));
            Assert.Empty(scope.LeftoverCgroups());
            Assert.Equal(before, Directory.GetFileSystemEntries(scope.Base, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray());
            Assert.Equal(SandboxState.Created, (await SandboxCatalog.GetAsync(config.RootDirectory, scope.Id, Ct)).State);
        }
        finally
        {
            _ = Kiln.Interop.LibC.Umount2(execDirectory, Kiln.Interop.LibC.MNT_DETACH);
        }
    }

    private static void RunMount(params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("mount") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"mount {string.Join(' ', arguments)} failed: {error}");
    }

    [Fact]
    public async Task A_jail_the_machine_cannot_give_is_refused_at_create_naming_the_jail_property()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        var config = Config(scope) with { Jail = scope.Settings() with { Uid = 99999 } };
        await using var driver = new FirecrackerHypervisor();

        var e = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.CreateAsync(scope.Id, config, Ct));

        Assert.Equal("Jail.Uid", e.PropertyName);
    }
}

public sealed class LeastPrivilegeTests
{
    [Fact]
    public async Task Without_a_jail_the_sandbox_directory_is_private_so_no_other_user_reaches_the_api_socket()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        // A directory left open by hand is closed again.
        Directory.CreateDirectory(Path.Combine(config.RootDirectory, "private"));
        File.SetUnixFileMode(Path.Combine(config.RootDirectory, "private"), (UnixFileMode)0x1ff);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("private", config, TestContext.Current.CancellationToken);

        await driver.StartAsync(TestContext.Current.CancellationToken);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(driver.SandboxDirectory));
        Assert.StartsWith(driver.SandboxDirectory + "/", driver.SocketPath, StringComparison.Ordinal);
        await driver.StopAsync(TestContext.Current.CancellationToken);
    }
}
