using Kiln.Sandbox;
using Kiln.Tests.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// A block hot-plug (PATCH /drives/drive_0) × every fault: the caller gets a typed error, the slot stays free in the
/// driver and in state.json, and a killed VMM is gone and recorded as ended.
/// </summary>
public sealed class HotplugFaultTests
{
    private const string Request = "PATCH /drives/drive_0";

    [Theory]
    [InlineData(Fault.Fail)]
    [InlineData(Fault.Exit)]
    [InlineData(Fault.Kill)]
    [InlineData(Fault.Cancel)]
    public async Task A_fault_during_a_hot_plug_leaves_the_slot_free_and_the_record_true(Fault fault)
    {
        await using var sandbox = await RunningSandbox.StartAsync(Knobs(fault, Request, "hot-plug"));
        var driver = sandbox.Driver;
        var disk = LifecycleTests.MakeDisk(sandbox.Root, "hot.img", 1);
        var pid = driver.Pid;
        using var vmm = sandbox.PinVmm();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var inject = InjectAsync(fault, driver.VmmLogPath, LogMarker(Request), () => pid, cts);

        var e = await Assert.ThrowsAnyAsync<Exception>(() => driver.HotplugAddAsync(new BlockDevice(disk), cts.Token));
        await inject;

        AssertOperationFailedWith(e, fault, "hot-plug");
        if (fault == Fault.Cancel)
        {
            // Given up on after it was sent: Firecracker may have swapped the file in, so the slot keeps it, in doubt.
            Assert.Equal([disk], driver.PoolSlots.Where(s => s.HostPath is not null).Select(s => s.HostPath));
            var slot = (await RecordAsync(driver.SandboxDirectory)).PoolSlots[0];
            Assert.Equal((disk, true), (slot.HostPath, slot.InDoubt));
        }
        else
        {
            Assert.All(driver.PoolSlots, s => Assert.Null(s.HostPath));
            Assert.All((await RecordAsync(driver.SandboxDirectory)).PoolSlots, s => Assert.Null(s.HostPath));
        }
        if (fault is Fault.Exit or Fault.Kill)
        {
            AssertNoVmm(driver.SocketPath);
            await sandbox.AssertAnotherDriverSeesTheVmmGoneAsync(vmm);
        }
        else
        {
            Assert.Equal(SandboxState.Running, driver.State);
            Assert.Equal(SandboxState.Running, (await RecordAsync(driver.SandboxDirectory)).State);
        }
    }
    /// <summary>
    /// The kill case against real Firecracker too (the VM tier): the VMM is SIGKILLed, and its end awaited, as the
    /// hot-plug's span (<c>kiln.vm.drive.update</c>) begins, so its PATCH meets a dead VMM.
    /// </summary>
    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_vmm_sigkilled_as_the_hot_plug_begins_fails_it_typed_and_leaves_the_slot_free(string target)
    {
        await using var sandbox = await RunningSandbox.StartAsync([], target: target);
        var driver = sandbox.Driver;
        var disk = LifecycleTests.MakeDisk(sandbox.Root, "hot.img", 1);
        using var vmm = sandbox.PinVmm();
        var kill = KillVmmAt("kiln.vm.drive.update", driver.SocketPath);

        await Assert.ThrowsAnyAsync<Kiln.Api.FirecrackerException>(() => driver.HotplugAddAsync(new BlockDevice(disk), Ct));

        kill.AssertKilled();
        Assert.All(driver.PoolSlots, s => Assert.Null(s.HostPath));
        Assert.All((await RecordAsync(driver.SandboxDirectory)).PoolSlots, s => Assert.Null(s.HostPath));
        AssertNoVmm(driver.SocketPath);
        await sandbox.AssertAnotherDriverSeesTheVmmGoneAsync(vmm);
    }

    /// <summary>
    /// Firecracker swaps the file in and holds its answer back (FAKE_FC_SLOW_ANSWER); the caller cancels in between.
    /// The slot keeps the file, in doubt, so the next hot-plug cannot take it and swap a disk out from under the guest;
    /// that hot-plug asks Firecracker first, records slot 0 as holding the file, and uses slot 1.
    /// </summary>
    [Fact]
    public async Task A_hot_plug_cancelled_after_firecracker_swapped_the_drive_keeps_its_slot_and_the_next_one_asks_and_takes_another()
    {
        await using var sandbox = await RunningSandbox.StartAsync(new() { ["FAKE_FC_SLOW_ANSWER"] = $"{Request}#1=3000" });
        var driver = sandbox.Driver;
        var disk = LifecycleTests.MakeDisk(sandbox.Root, "hot.img", 1);
        var second = LifecycleTests.MakeDisk(sandbox.Root, "second.img", 1);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var cancel = InjectAsync(Fault.Cancel, driver.VmmLogPath, LogMarker(Request), () => null, cts);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => driver.HotplugAddAsync(new BlockDevice(disk), cts.Token));
        await cancel;
        Assert.True((await RecordAsync(driver.SandboxDirectory)).PoolSlots[0].InDoubt);

        var next = Assert.IsType<BlockHotplugResult>(await driver.HotplugAddAsync(new BlockDevice(second), Ct));

        Assert.Equal(1, next.Slot);
        var slots = (await RecordAsync(driver.SandboxDirectory)).PoolSlots;
        Assert.Equal((disk, (bool?)null), (slots[0].HostPath, slots[0].InDoubt));
        Assert.Equal(second, slots[1].HostPath);
        using var client = new Kiln.Api.FirecrackerClient(driver.SocketPath);
        var drives = (await client.GetExportVmConfigAsync(Ct)).Drives!;
        Assert.Equal(disk, drives.Single(d => d.DriveId == "drive_0").PathOnHost);
    }

    /// <summary>
    /// The same for a hot-unplug: Firecracker puts the placeholder back and holds its answer; the caller cancels. The
    /// slot keeps the file, in doubt, until the next operation asks and finds it free, which another driver (another
    /// process, knowing only the record) does here: its hot-plug gets slot 0.
    /// </summary>
    [Fact]
    public async Task A_hot_unplug_cancelled_after_firecracker_put_the_placeholder_back_is_found_free_by_another_driver()
    {
        await using var sandbox = await RunningSandbox.StartAsync(new() { ["FAKE_FC_SLOW_ANSWER"] = $"{Request}#2=3000" });
        var driver = sandbox.Driver;
        var disk = LifecycleTests.MakeDisk(sandbox.Root, "hot.img", 1);
        var second = LifecycleTests.MakeDisk(sandbox.Root, "second.img", 1);
        await driver.HotplugAddAsync(new BlockDevice(disk), Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var cancel = InjectAsync(Fault.Cancel, driver.VmmLogPath, LogMarker(Request), () => null, cts, occurrence: 2);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => driver.HotplugRemoveAsync(new BlockDevice(disk), cts.Token));
        await cancel;
        var doubted = (await RecordAsync(driver.SandboxDirectory)).PoolSlots[0];
        Assert.Equal((disk, true), (doubted.HostPath, doubted.InDoubt));

        await using (var other = new FirecrackerHypervisor())
        {
            await other.CreateAsync("op", driver.Config, Ct);
            var taken = Assert.IsType<BlockHotplugResult>(await other.HotplugAddAsync(new BlockDevice(second), Ct));
            Assert.Equal(0, taken.Slot);
        }

        var slot = (await RecordAsync(driver.SandboxDirectory)).PoolSlots[0];
        Assert.Equal((second, (bool?)null), (slot.HostPath, slot.InDoubt));
    }
}
