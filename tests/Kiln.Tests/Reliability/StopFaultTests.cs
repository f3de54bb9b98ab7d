using System.Diagnostics;
using Kiln.Sandbox;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// A stop of a VMM that ignores SIGTERM (the stop's grace period is where it waits) × fault: the VMM killed from
/// outside meanwhile, the grace period running out, or the caller cancelling. Afterwards the record matches the
/// process: Stopped with no PID once it is gone, Running with its PID while it still runs.
/// </summary>
public sealed class StopFaultTests
{
    [Theory]
    [InlineData(Fault.Fail)]
    [InlineData(Fault.Kill)]
    [InlineData(Fault.Cancel)]
    public async Task A_fault_during_a_stop_leaves_the_record_matching_the_process(Fault fault)
    {
        var grace = fault == Fault.Fail ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromMinutes(10);
        await using var sandbox = await RunningSandbox.StartAsync(new() { ["FAKE_FC_IGNORE_SIGTERM"] = "1" }, grace);
        var driver = sandbox.Driver;
        var pid = driver.Pid!.Value;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        // Whenever these land (before or after SIGTERM) the outcome asserted below is the same.
        if (fault == Fault.Cancel)
            cts.CancelAfter(TimeSpan.FromMilliseconds(300));

        var stop = driver.StopAsync(cts.Token);
        if (fault == Fault.Kill)
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }

        if (fault == Fault.Cancel)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stop);
            Assert.NotEmpty(Kiln.Tests.Support.ProcessScan.WithCommandLineContaining(driver.SocketPath));
            var record = await RecordAsync(driver.SandboxDirectory);
            Assert.Equal(SandboxState.Running, record.State);
            Assert.Equal(pid, record.Pid);
            await driver.StopAsync(TimeSpan.Zero, Ct); // and a later stop still ends it
        }
        else
        {
            await stop;
        }
        AssertNoVmm(driver.SocketPath);
        Assert.Equal(SandboxState.Stopped, driver.State);
        var final = await RecordAsync(driver.SandboxDirectory);
        Assert.Equal(SandboxState.Stopped, final.State);
        Assert.Null(final.Pid);
    }
}
