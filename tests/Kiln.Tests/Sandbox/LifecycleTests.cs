using System.Text.RegularExpressions;
using Kiln.Api;
using Kiln.Host;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Sandbox;

public sealed class LifecycleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_sandbox_goes_through_its_whole_lifecycle(string targetName)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.For(targetName, root);
        var dataA = MakeDisk(root, "a.img", 4);
        var dataB = MakeDisk(root, "b.img", 8);
        var bootDisk = MakeDisk(root, "boot.img", 2);
        var config = target.Config(root, poolSize: 2);
        await using var driver = new FirecrackerHypervisor();

        // Create, and queue a boot-time drive before the API exists.
        await driver.CreateAsync("life", config, Ct);
        Assert.Equal(SandboxState.Created, driver.State);
        Assert.Null(driver.Api);
        await driver.AddDeviceAsync(new BlockDevice(bootDisk) { Id = "boot_data", ReadOnly = true }, Ct);

        // Start.
        await driver.StartAsync(Ct);
        Assert.Equal(SandboxState.Running, driver.State);
        Assert.NotNull(driver.Pid);
        Assert.NotNull(driver.StartedAt);
        Assert.Equal(InstanceState.Running, (await driver.Api!.DescribeInstanceAsync(Ct)).State);
        var vmConfig = await driver.Api.GetExportVmConfigAsync(Ct);
        Assert.Equal(2, vmConfig.MachineConfig!.VcpuCount);
        var drives = vmConfig.Drives!.ToDictionary(d => d.DriveId);
        Assert.Equal(target.ImagePath is null ? ["boot_data", "drive_0", "drive_1"] : ["boot_data", "drive_0", "drive_1", "rootfs"], drives.Keys.Order());
        Assert.True(drives["boot_data"].IsReadOnly);
        if (target.ImagePath is not null)
        {
            Assert.Equal(config.ImageReadOnly, drives["rootfs"].IsReadOnly);
            Assert.False(drives["rootfs"].IsRootDevice);
        }

        // The pool's drives come right after the rootfs (vda) in attach order, so the guest names them from there.
        var (slot0, slot1) = target.ImagePath is null ? ("vda", "vdb") : ("vdb", "vdc");
        Assert.Equal("/dev/" + slot0, driver.PoolSlots[0].GuestDevice);
        // Hot-plug is only seen once the guest's virtio_blk driver has probed: wait for the guest to be up.
        var seen = await GuestConsole.WaitForAsync(driver, target.ReadyPattern, target.BootTimeout);
        await Eventually.FileContainsAsync(driver.VmmLogPath, "\"/machine-config\"", TimeSpan.FromSeconds(10));

        // Hot-plug into the pool, until it is exhausted.
        var added = Assert.IsType<BlockHotplugResult>(await driver.HotplugAddAsync(new BlockDevice(dataA), Ct));
        Assert.Equal((0, "drive_0", "/dev/" + slot0), (added.Slot, added.DriveId, added.GuestDevice));
        seen = await GuestConsole.WaitForAsync(driver, new Regex($@"{slot0}: detected capacity change from \d+ to 8192\b"), target.BootTimeout, seen);
        var second = Assert.IsType<BlockHotplugResult>(await driver.HotplugAddAsync(new BlockDevice(dataB), Ct));
        Assert.Equal((1, "/dev/" + slot1), (second.Slot, second.GuestDevice));
        var exhausted = await Assert.ThrowsAsync<BlockPoolExhaustedException>(() => driver.HotplugAddAsync(new BlockDevice(dataA), Ct));
        Assert.Equal(2, exhausted.PoolSize);
        Assert.Equal(dataA, (await driver.Api.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == "drive_0").PathOnHost);

        // Hot-unplug puts the placeholder back and frees the slot.
        await driver.HotplugRemoveAsync(new BlockDevice(dataA) { PoolSlot = 0 }, Ct);
        Assert.Null(driver.PoolSlots[0].HostPath);
        Assert.Equal(dataB, driver.PoolSlots[1].HostPath);
        var placeholder = (await driver.Api.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == "drive_0").PathOnHost;
        Assert.StartsWith(driver.SandboxDirectory, placeholder);
        await GuestConsole.WaitForAsync(driver, new Regex($@"{slot0}: detected capacity change from 8192 to \d+"), target.BootTimeout, seen);

        // vCPU threads.
        var threads = await driver.GetVcpuThreadIdsAsync(Ct);
        Assert.Equal([0, 1], threads.Keys.Order());
        Assert.All(threads.Values, tid => Assert.Contains(ProcFs.GetThreads(driver.Pid!.Value), t => t.Id == tid));

        // Pause, resume, save.
        await driver.PauseAsync(Ct);
        Assert.Equal(SandboxState.Paused, driver.State);
        Assert.Equal(InstanceState.Paused, (await driver.Api.DescribeInstanceAsync(Ct)).State);
        var snapshot = await driver.SaveAsync(Ct);
        Assert.True(File.Exists(snapshot.StatePath));
        Assert.Equal(config.MemoryMiB * 1024L * 1024, new FileInfo(snapshot.MemoryPath).Length);
        await driver.ResumeAsync(Ct);
        Assert.Equal(SandboxState.Running, driver.State);
        await Assert.ThrowsAsync<SandboxStateException>(() => driver.SaveAsync(Ct));

        // Stop (idempotent), then clean up (twice).
        var pid = driver.Pid!.Value;
        var identity = ProcFs.TryGetIdentity(pid)!;
        await Assert.ThrowsAsync<SandboxStateException>(() => driver.CleanupAsync(Ct));
        await driver.StopAsync(Ct);
        await driver.StopAsync(Ct);
        Assert.Equal(SandboxState.Stopped, driver.State);
        Assert.Null(driver.Pid);
        Assert.Null(driver.Api);
        Assert.False(ProcFs.IsSameProcess(identity));
        Assert.False(File.Exists(driver.SocketPath));
        await driver.CleanupAsync(Ct);
        await driver.CleanupAsync(Ct);
        Assert.False(Directory.Exists(driver.SandboxDirectory));
    }

    [Fact]
    public async Task Firecrackers_log_has_its_own_file_fresh_for_each_start_with_the_previous_one_kept()
    {
        using var root = new TempRoot();
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("logs", SandboxTarget.Fake(root).Config(root), Ct);
        const string running = "Running Firecracker";

        await driver.StartAsync(Ct);
        // InstanceStart is the last request: once its line is in the log, so is everything before it.
        await Eventually.FileContainsAsync(driver.VmmLogPath, "\"/actions\"", TimeSpan.FromSeconds(10));
        Assert.Contains(running, await File.ReadAllTextAsync(driver.VmmLogPath, Ct));
        Assert.Contains("\"/machine-config\"", await File.ReadAllTextAsync(driver.VmmLogPath, Ct));
        Assert.DoesNotContain(running, await File.ReadAllTextAsync(driver.ConsolePath, Ct));
        await driver.StopAsync(Ct);
        var firstLog = await File.ReadAllTextAsync(driver.VmmLogPath, Ct);
        await driver.StartAsync(Ct);

        Assert.Equal(firstLog, await File.ReadAllTextAsync(driver.VmmLogPath + ".1", Ct));
        await Eventually.FileContainsAsync(driver.VmmLogPath, running, TimeSpan.FromSeconds(10));
        Assert.Single(File.ReadAllLines(driver.VmmLogPath), line => line.Contains(running, StringComparison.Ordinal));
        await driver.StopAsync(Ct);
        await driver.CleanupAsync(Ct);
        Assert.False(Directory.Exists(driver.SandboxDirectory));
    }

    internal static string MakeDisk(TempRoot root, string name, int mib)
    {
        var path = root.Combine(name);
        using var file = File.Create(path);
        file.SetLength(mib * 1024L * 1024);
        return path;
    }
}
