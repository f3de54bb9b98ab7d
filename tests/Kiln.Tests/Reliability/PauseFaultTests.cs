using Kiln.Sandbox;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// A pause (PATCH /vm of a running VM) and a resume (of a paused one) × every fault: a typed error, and the driver and
/// state.json saying what happened — the old state when Firecracker refused or never acted, Exited once the VMM is
/// gone. A PATCH Firecracker carried out but whose answer the caller gave up on is settled by asking Firecracker
/// before the next operation, and recorded (Microvm.IsStateInDoubt).
/// </summary>
public sealed class PauseFaultTests
{
    private const string Request = "PATCH /vm";

    public static TheoryData<string, Fault> Cases()
    {
        var cases = new TheoryData<string, Fault>();
        foreach (var operation in new[] { "pause", "resume" })
            foreach (var fault in Enum.GetValues<Fault>())
                cases.Add(operation, fault);
        return cases;
    }

    /// <summary>A resume's PATCH is the second (its pause went through first): the knobs name that one.</summary>
    private static int Nth(string operation) => operation == "pause" ? 1 : 2;

    private static async Task<RunningSandbox> ReadyForAsync(string operation, Dictionary<string, string> knobs, string target = "fake")
    {
        var sandbox = await RunningSandbox.StartAsync(knobs, target: target);
        if (operation == "resume")
            await sandbox.Driver.PauseAsync(Ct);
        return sandbox;
    }

    private static Task RunAsync(FirecrackerHypervisor driver, string operation, CancellationToken ct) =>
        operation == "pause" ? driver.PauseAsync(ct) : driver.ResumeAsync(ct);

    /// <summary>
    /// A sandbox whose <paramref name="operation"/> Firecracker carried out while its answer was held back
    /// (FAKE_FC_SLOW_ANSWER, a loaded host), the caller cancelling in between.
    /// </summary>
    private static async Task<RunningSandbox> CancelledAfterFirecrackerActedAsync(string operation)
    {
        var sandbox = await ReadyForAsync(operation, new() { ["FAKE_FC_SLOW_ANSWER"] = $"{Request}#{Nth(operation)}=3000" });
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var cancel = InjectAsync(Fault.Cancel, sandbox.Driver.VmmLogPath, LogMarker(Request), () => null, cts, Nth(operation));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(sandbox.Driver, operation, cts.Token));
            await cancel;
            return sandbox;
        }
        catch
        {
            await sandbox.DisposeAsync();
            throw;
        }
    }

    private static SandboxState Before(string operation) => operation == "pause" ? SandboxState.Running : SandboxState.Paused;

    private static SandboxState After(string operation) => operation == "pause" ? SandboxState.Paused : SandboxState.Running;

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_fault_during_a_pause_or_resume_fails_it_typed_and_leaves_the_record_true(string operation, Fault fault)
    {
        var request = $"{Request}#{Nth(operation)}";
        await using var sandbox = await ReadyForAsync(operation, Knobs(fault, request, operation));
        var driver = sandbox.Driver;
        var pid = driver.Pid;
        using var vmm = sandbox.PinVmm();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var inject = InjectAsync(fault, driver.VmmLogPath, LogMarker(Request), () => pid, cts, Nth(operation));

        var e = await Assert.ThrowsAnyAsync<Exception>(() => RunAsync(driver, operation, cts.Token));
        await inject;

        AssertOperationFailedWith(e, fault, operation);
        if (fault is Fault.Exit or Fault.Kill)
        {
            AssertNoVmm(driver.SocketPath);
            await sandbox.AssertAnotherDriverSeesTheVmmGoneAsync(vmm);
            return;
        }
        // Refused, or hung unanswered (the stand-in never acts on a hung request): nothing changed.
        Assert.Equal(Before(operation), driver.State);
        Assert.Equal(Before(operation), (await RecordAsync(driver.SandboxDirectory)).State);
        Assert.Equal(Before(operation), await sandbox.StateSeenByAnotherDriverAsync());
    }

    /// <summary>
    /// The PATCH carried out, the caller gone (<see cref="CancelledAfterFirecrackerActedAsync"/>). The cancelled driver's next operation asks Firecracker first, records the real state and is refused
    /// (or allowed) by it: the same operation again is refused as already done.
    /// </summary>
    [Theory]
    [InlineData("pause")]
    [InlineData("resume")]
    public async Task A_pause_or_resume_cancelled_after_firecracker_acted_is_found_out_and_recorded_by_the_next_operation(string operation)
    {
        await using var sandbox = await CancelledAfterFirecrackerActedAsync(operation);
        var driver = sandbox.Driver;

        var doubted = await RecordAsync(driver.SandboxDirectory);
        Assert.True(doubted.StateInDoubt);
        Assert.Equal(Before(operation), doubted.State); // what was known; the flag says it may be stale
        var again = await Assert.ThrowsAsync<SandboxStateException>(() => RunAsync(driver, operation, Ct));
        Assert.Equal(After(operation), again.Actual);
        Assert.Equal(After(operation), driver.State);
        var settled = await RecordAsync(driver.SandboxDirectory);
        Assert.Equal(After(operation), settled.State);
        Assert.Null(settled.StateInDoubt);
    }

    /// <summary>
    /// The same, found out by another driver (another process: it knows only the record): the record's doubt makes it
    /// ask Firecracker before it acts, so the opposite operation goes through and is recorded.
    /// </summary>
    [Theory]
    [InlineData("pause")]
    [InlineData("resume")]
    public async Task Another_driver_reading_a_record_in_doubt_asks_firecracker_before_it_acts(string operation)
    {
        await using var sandbox = await CancelledAfterFirecrackerActedAsync(operation);
        var driver = sandbox.Driver;

        await using (var other = new FirecrackerHypervisor())
        {
            await other.CreateAsync("op", driver.Config, Ct);
            Assert.Equal(Before(operation), other.State); // as recorded, until it asks
            await RunAsync(other, operation == "pause" ? "resume" : "pause", Ct);
            Assert.Equal(Before(operation), other.State);
        }

        var record = await RecordAsync(driver.SandboxDirectory);
        Assert.Equal(Before(operation), record.State);
        Assert.Null(record.StateInDoubt);
        using var client = new Kiln.Api.FirecrackerClient(driver.SocketPath);
        var expected = operation == "pause" ? Kiln.Api.InstanceState.Running : Kiln.Api.InstanceState.Paused;
        Assert.Equal(expected, (await client.DescribeInstanceAsync(Ct)).State);
    }

    /// <summary>
    /// The kill case against real Firecracker too (the VM tier): the VMM is SIGKILLed, and its end awaited, as the
    /// operation's span (<c>kiln.vm.pause</c>, <c>kiln.vm.resume</c>) begins, so its PATCH meets a dead VMM.
    /// </summary>
    [Theory]
    [MemberData(nameof(Targets))]
    public async Task A_vmm_sigkilled_as_a_pause_or_resume_begins_fails_it_typed_and_the_sandbox_is_seen_gone(string target, string operation)
    {
        await using var sandbox = await ReadyForAsync(operation, [], target);
        var driver = sandbox.Driver;
        using var vmm = sandbox.PinVmm();
        var kill = KillVmmAt("kiln.vm." + operation, driver.SocketPath);

        await Assert.ThrowsAnyAsync<Kiln.Api.FirecrackerException>(() => RunAsync(driver, operation, Ct));

        kill.AssertKilled();
        AssertNoVmm(driver.SocketPath);
        await sandbox.AssertAnotherDriverSeesTheVmmGoneAsync(vmm);
    }

    public static TheoryData<string, string> Targets()
    {
        var cases = new TheoryData<string, string>();
        foreach (var target in new[] { "fake", "real" })
            foreach (var operation in new[] { "pause", "resume" })
                cases.Add(target, operation);
        return cases;
    }
}
