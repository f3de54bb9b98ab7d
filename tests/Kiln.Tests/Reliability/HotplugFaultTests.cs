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
        Assert.All(driver.PoolSlots, s => Assert.Null(s.HostPath));
        Assert.All((await RecordAsync(driver.SandboxDirectory)).PoolSlots, s => Assert.Null(s.HostPath));
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

        Assert.NotEqual(0, kill.Pid);
        Assert.All(driver.PoolSlots, s => Assert.Null(s.HostPath));
        Assert.All((await RecordAsync(driver.SandboxDirectory)).PoolSlots, s => Assert.Null(s.HostPath));
        AssertNoVmm(driver.SocketPath);
        await sandbox.AssertAnotherDriverSeesTheVmmGoneAsync(vmm);
    }
}
