using Kiln.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// A snapshot (PUT /snapshot/create of a paused VM) × every fault: a typed error, no snapshot file left behind, and
/// the record says Paused (VMM alive) or not running (VMM gone).
/// </summary>
public sealed class SnapshotFaultTests
{
    private const string Request = "PUT /snapshot/create";

    [Theory]
    [InlineData(Fault.Fail)]
    [InlineData(Fault.Exit)]
    [InlineData(Fault.Kill)]
    [InlineData(Fault.Cancel)]
    public async Task A_fault_during_a_snapshot_leaves_no_snapshot_files_and_the_record_true(Fault fault)
    {
        await using var sandbox = await RunningSandbox.StartAsync(Knobs(fault, Request, "snapshot"));
        var driver = sandbox.Driver;
        await driver.PauseAsync(Ct);
        var before = Files(sandbox.Root.Path);
        var pid = driver.Pid;
        using var vmm = sandbox.PinVmm();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var inject = InjectAsync(fault, driver.VmmLogPath, LogMarker(Request), () => pid, cts);

        var e = await Assert.ThrowsAnyAsync<Exception>(() => driver.SaveAsync(cts.Token));
        await inject;

        AssertOperationFailedWith(e, fault, "snapshot");
        Assert.False(File.Exists(Path.Combine(driver.SandboxDirectory, "snapshot.state")));
        Assert.False(File.Exists(Path.Combine(driver.SandboxDirectory, "snapshot.mem")));
        if (fault is Fault.Exit or Fault.Kill)
        {
            AssertNoVmm(driver.SocketPath);
            await sandbox.AssertAnotherDriverSeesTheVmmGoneAsync(vmm);
        }
        else
        {
            Assert.Equal(before, Files(sandbox.Root.Path));
            Assert.Equal(SandboxState.Paused, (await RecordAsync(driver.SandboxDirectory)).State);
        }
    }
    /// <summary>
    /// The kill case against real Firecracker too (the VM tier): the VMM is SIGKILLed, and its end awaited, as the
    /// snapshot's span (<c>kiln.vm.snapshot.create</c>) begins, so its PUT meets a dead VMM.
    /// </summary>
    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_vmm_sigkilled_as_the_snapshot_begins_fails_it_typed_and_leaves_no_snapshot_files(string target)
    {
        await using var sandbox = await RunningSandbox.StartAsync([], target: target);
        var driver = sandbox.Driver;
        await driver.PauseAsync(Ct);
        using var vmm = sandbox.PinVmm();
        var kill = KillVmmAt("kiln.vm.snapshot.create", driver.SocketPath);

        await Assert.ThrowsAnyAsync<Kiln.Api.FirecrackerException>(() => driver.SaveAsync(Ct));

        kill.AssertKilled();
        Assert.False(File.Exists(Path.Combine(driver.SandboxDirectory, "snapshot.state")));
        Assert.False(File.Exists(Path.Combine(driver.SandboxDirectory, "snapshot.mem")));
        AssertNoVmm(driver.SocketPath);
        await sandbox.AssertAnotherDriverSeesTheVmmGoneAsync(vmm);
    }
}
