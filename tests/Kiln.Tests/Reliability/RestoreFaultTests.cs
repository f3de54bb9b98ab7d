using Kiln.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// A sandbox started by restoring a snapshot × every fault at the load, and the VMM SIGKILLed as each restore step
/// begins (the stand-in, and real Firecracker with a guest): the restore fails with SandboxStartException naming the
/// step, no VMM of this sandbox runs, the files are exactly those from before, and state.json says Created, no PID.
/// </summary>
public sealed class RestoreFaultTests
{
    private const string Request = "PUT /snapshot/load";

    [Theory]
    [InlineData(Fault.Fail)]
    [InlineData(Fault.Exit)]
    [InlineData(Fault.Kill)]
    [InlineData(Fault.Cancel)]
    public async Task A_fault_at_the_snapshot_load_fails_the_restore_there_and_leaves_nothing(Fault fault)
    {
        using var root = new TempRoot();
        var config = await RestoreConfigAsync(root, SandboxTarget.Fake(root));
        await using var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Environment = Knobs(fault, Request, "snapshot-load") });
        await driver.CreateAsync("restored", config, Ct);
        var before = Files(root.Path);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var inject = InjectAsync(fault, driver.VmmLogPath, LogMarker(Request), () => driver.Pid ?? SoleVmm(driver.SocketPath), cts);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(cts.Token));
        await inject;

        AssertFailedAt(e, "snapshot-load", fault);
        await AssertStartLeftNothingAsync(driver, root, before);
    }

    public static TheoryData<string, string> StepsOnEveryTarget()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in SandboxTarget.Names)
        {
            data.Add(target, "api-ready");
            data.Add(target, "snapshot-load");
        }
        return data;
    }

    /// <summary>
    /// The kill case against real Firecracker too: a guest is booted, paused and snapshotted, and the restore's VMM
    /// is SIGKILLed (its end awaited) as the step's span begins, before the step's own work.
    /// </summary>
    [Theory]
    [MemberData(nameof(StepsOnEveryTarget))]
    public async Task A_vmm_sigkilled_as_a_restore_step_begins_fails_the_restore_there_and_leaves_nothing(string target, string step)
    {
        using var root = new TempRoot();
        var config = await RestoreConfigAsync(root, SandboxTarget.For(target, root));
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("restored", config, Ct);
        var before = Files(root.Path);
        var kill = KillVmmAt("kiln.vm.restore." + step, driver.SocketPath);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        kill.AssertKilled();
        AssertFailedAt(e, step, Fault.Kill);
        await AssertStartLeftNothingAsync(driver, root, before);
    }

    /// <summary>A restore configuration from a snapshot of another sandbox of the target, taken once it runs.</summary>
    private static async Task<HypervisorConfig> RestoreConfigAsync(TempRoot root, SandboxTarget target)
    {
        var config = target.Config(root, poolSize: 0) with { StopTimeout = TimeSpan.FromSeconds(2) };
        SandboxSnapshot snapshot;
        await using (var source = new FirecrackerHypervisor())
        {
            await source.CreateAsync("source", config, Ct);
            await source.StartAsync(Ct);
            await source.PauseAsync(Ct);
            snapshot = await source.SaveAsync(Ct);
            await source.StopAsync(TimeSpan.Zero, Ct);
        }
        return config with { Restore = SandboxRestore.FromSnapshot(snapshot.StatePath, snapshot.MemoryPath) };
    }

    private static int SoleVmm(string socketPath) => Assert.Single(ProcessScan.WithCommandLineContaining(socketPath));
}
