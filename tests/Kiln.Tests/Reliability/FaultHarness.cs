using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Reliability;

/// <summary>How a fault is injected at one step of an operation.</summary>
public enum Fault
{
    /// <summary>The step's request is answered 400 with a fault message (FAKE_FC_FAIL), or the step's own work fails.</summary>
    Fail,

    /// <summary>The VMM exits on its own when the step's request arrives, without answering (FAKE_FC_EXIT_AT).</summary>
    Exit,

    /// <summary>The step's request hangs (FAKE_FC_HANG) and the test SIGKILLs the VMM.</summary>
    Kill,

    /// <summary>The step's request hangs and the caller's token is cancelled.</summary>
    Cancel,
}

/// <summary>What every fault test checks afterwards: the VMM gone, the files as before, the record true.</summary>
internal static class FaultHarness
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Every file and directory under <paramref name="root"/>, to compare before and after an operation.</summary>
    public static string[] Files(string root) =>
        [.. Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];

    /// <summary>The knobs that make the stand-in misbehave at <paramref name="request"/>.</summary>
    public static Dictionary<string, string> Knobs(Fault fault, string request, string step) => fault switch
    {
        Fault.Fail => new() { ["FAKE_FC_FAIL"] = $"{request}=400:Injected fault for {step}" },
        Fault.Exit => new() { ["FAKE_FC_EXIT_AT"] = request, ["FAKE_FC_EXIT_CODE"] = "7" },
        _ => new() { ["FAKE_FC_HANG"] = request },
    };

    /// <summary>The VMM log's line for <paramref name="request"/> ("PATCH /drives/x" → "Patch request on \"/drives/x\"").</summary>
    public static string LogMarker(string request)
    {
        var space = request.IndexOf(' ');
        return $"{request[0]}{request[1..space].ToLowerInvariant()} request on \"{request[(space + 1)..]}\"";
    }

    /// <summary>
    /// For <see cref="Fault.Kill"/> and <see cref="Fault.Cancel"/>: once the VMM has logged <paramref name="marker"/>
    /// (its <paramref name="occurrence"/>th time: it is then stuck in the step), SIGKILLs the VMM or cancels <paramref name="cts"/>.
    /// </summary>
    public static Task InjectAsync(Fault fault, string logPath, string marker, Func<int?> pid, CancellationTokenSource cts, int occurrence = 1) =>
        fault is Fault.Kill or Fault.Cancel
            ? Task.Run(async () =>
            {
                await LoggedAsync(logPath, marker, occurrence);
                if (fault == Fault.Cancel)
                {
                    await cts.CancelAsync();
                    return;
                }
                var id = pid() ?? throw new InvalidOperationException("no VMM to kill");
                using var pidFd = Kiln.Interop.PidFd.TryOpen(id) ?? throw new InvalidOperationException($"the VMM (PID {id}) ended before the kill");
                Assert.True(pidFd.TrySignal(Kiln.Interop.LibC.SIGKILL), $"the VMM (PID {id}) ended before the kill");
                // Its end, through its pidfd (no poll): what the test checks next is the aftermath of a dead VMM.
                await pidFd.WaitForExitAsync(Ct);
            }, Ct)
            : Task.CompletedTask;

    /// <summary>Until <paramref name="logPath"/> holds <paramref name="marker"/> <paramref name="occurrence"/> times, within a deadline.</summary>
    public static Task LoggedAsync(string logPath, string marker, int occurrence = 1) =>
        Eventually.TrueAsync(
            () => File.Exists(logPath) && File.ReadAllText(logPath).Split(marker).Length > occurrence,
            TimeSpan.FromSeconds(60), $"'{marker}' logged {occurrence} time(s) in {logPath}");

    /// <summary>
    /// SIGKILLs the one process whose command line names <paramref name="socketPath"/> (the sandbox's VMM, spawned by
    /// an earlier step; probed for until it has exec'd, within a deadline) and blocks until it has ended. Its PID.
    /// </summary>
    public static int KillVmmNow(string socketPath)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (ProcessScan.WithCommandLineContaining(socketPath) is [var pid])
            {
                using var pidFd = Kiln.Interop.PidFd.TryOpen(pid) ?? throw new InvalidOperationException($"the VMM (PID {pid}) ended before the kill");
                // Checked again with the pidfd open: it pins the process, so the PID cannot have been reused between.
                Assert.Contains(pid, ProcessScan.WithCommandLineContaining(socketPath));
                Assert.True(pidFd.TrySignal(Kiln.Interop.LibC.SIGKILL), $"the VMM (PID {pid}) ended before the kill");
                pidFd.WaitForExitAsync(Ct).GetAwaiter().GetResult();
                return pid;
            }
            Assert.True(DateTime.UtcNow < deadline, $"no VMM naming {socketPath} within 30 s");
            Thread.Sleep(1);
        }
    }

    /// <summary>
    /// Arms <see cref="StepHook"/> to SIGKILL the sandbox's VMM (<see cref="KillVmmNow"/>) as the span named
    /// <paramref name="span"/> begins, in this flow; <see cref="ArmedKill.Pid"/> then says which VMM it killed (0 while
    /// the span has not begun).
    /// </summary>
    public static ArmedKill KillVmmAt(string span, string socketPath)
    {
        var kill = new ArmedKill(span);
        StepHook.Arm(begun =>
        {
            if (begun != span)
                return;
            try
            {
                kill.Pid = KillVmmNow(socketPath);
            }
            catch (Exception e)
            {
                kill.Failure = e; // thrown on into the operation too; kept so the test can say why nothing was killed
                throw;
            }
        });
        return kill;
    }

    /// <summary>What <see cref="KillVmmAt"/> did: the PID it SIGKILLed (0 before), or why it could not.</summary>
    public sealed class ArmedKill(string span)
    {
        public int Pid { get; set; }

        public Exception? Failure { get; set; }

        /// <summary>Fails, saying why, unless the VMM was SIGKILLed as the span began.</summary>
        public void AssertKilled() =>
            Assert.True(Pid != 0, Failure is null ? $"{span} never began" : $"the kill at {span} failed: {Failure}");
    }

    /// <summary>
    /// The sandbox's state as another process reads it once its owner is dead. An owned VMM dies of its parent-death
    /// signal a moment after its owner; while it exits it has already lost its command line (so a scan for its socket
    /// path no longer finds it) but is not yet a zombie (so it is still alive to procfs, and to Kiln). This waits, up
    /// to a deadline, until the record no longer claims a live VMM unless <paramref name="alive"/>: seen once in CI as
    /// a record read Starting right after the scan came back empty.
    /// </summary>
    public static async Task<SandboxState> RecordedAfterOwnerDiedAsync(string sandboxRoot, string id, bool alive)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var state = (await SandboxCatalog.GetAsync(sandboxRoot, id, Ct)).State;
            if (alive || state is not (SandboxState.Starting or SandboxState.Running or SandboxState.Paused) || DateTime.UtcNow > deadline)
                return state;
            await Task.Delay(20, Ct);
        }
    }

    /// <summary>
    /// A start or restore that failed at <paramref name="step"/> by <paramref name="fault"/>: the step named, and the
    /// fault's trace (Firecracker's fault message, the cancellation, or neither).
    /// </summary>
    public static void AssertFailedAt(SandboxStartException e, string step, Fault fault)
    {
        Assert.Equal(step, e.Step);
        Assert.Contains($"'{step}'", e.Message);
        switch (fault)
        {
            case Fault.Fail:
                Assert.Equal($"Injected fault for {step}", e.FaultMessage);
                break;
            case Fault.Cancel:
                Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
                Assert.Contains("cancelled", e.Message);
                break;
            default:
                Assert.Null(e.FaultMessage);
                Assert.DoesNotContain("cancelled", e.Message);
                break;
        }
    }

    /// <summary>
    /// What a post-boot operation (hot-plug, snapshot, pause, resume) throws for <paramref name="fault"/>: Firecracker's
    /// fault message for a refusal, a cancellation, or a Firecracker (transport) error for a VMM that went away.
    /// </summary>
    public static void AssertOperationFailedWith(Exception e, Fault fault, string step)
    {
        switch (fault)
        {
            case Fault.Fail:
                Assert.Equal($"Injected fault for {step}", Assert.IsType<Kiln.Api.FirecrackerApiException>(e).FaultMessage);
                break;
            case Fault.Cancel:
                Assert.IsAssignableFrom<OperationCanceledException>(e);
                break;
            default:
                Assert.IsAssignableFrom<Kiln.Api.FirecrackerException>(e);
                break;
        }
    }

    /// <summary>After a failed start or restore: no VMM, the files as before, and the driver and record say Created.</summary>
    public static async Task AssertStartLeftNothingAsync(FirecrackerHypervisor driver, TempRoot root, string[] before)
    {
        AssertNoVmm(driver.SocketPath);
        Assert.Equal(before, Files(root.Path));
        Assert.Equal(SandboxState.Created, driver.State);
        Assert.Null(driver.Pid);
        var record = await RecordAsync(driver.SandboxDirectory);
        Assert.Equal(SandboxState.Created, record.State);
        Assert.Null(record.Pid);
        Assert.Null(record.StartedAt);
    }

    /// <summary>The persisted record, read as another process would.</summary>
    public static async Task<SandboxStateFile> RecordAsync(string sandboxDirectory) =>
        await SandboxStateFile.TryReadAsync(Path.Combine(sandboxDirectory, "state.json"), Ct)
            ?? throw new Xunit.Sdk.XunitException("state.json is missing");

    public static void AssertNoVmm(string socketPath) => Assert.Empty(ProcessScan.WithCommandLineContaining(socketPath));
}

/// <summary>A running sandbox of the stand-in with failure knobs, for the post-boot operations' fault tests.</summary>
internal sealed class RunningSandbox : IAsyncDisposable
{
    private RunningSandbox(TempRoot root, FirecrackerHypervisor driver)
    {
        Root = root;
        Driver = driver;
    }

    public TempRoot Root { get; }
    public FirecrackerHypervisor Driver { get; }

    /// <summary>A running sandbox of <paramref name="target"/> ("fake", or "real": the VM tier, skipped without it).</summary>
    public static async Task<RunningSandbox> StartAsync(Dictionary<string, string> knobs, TimeSpan? stopTimeout = null, string target = "fake")
    {
        var root = new TempRoot();
        HypervisorConfig config;
        try
        {
            config = SandboxTarget.For(target, root).Config(root) with { StopTimeout = stopTimeout ?? TimeSpan.FromSeconds(2) };
        }
        catch
        {
            root.Dispose();
            throw;
        }
        var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Environment = knobs });
        await driver.CreateAsync("op", config, FaultHarness.Ct);
        await driver.StartAsync(FaultHarness.Ct);
        return new RunningSandbox(root, driver);
    }

    /// <summary>What a driver in another process, reading state.json, finds.</summary>
    public async Task<SandboxState> StateSeenByAnotherDriverAsync()
    {
        await using var other = new FirecrackerHypervisor();
        await other.CreateAsync("op", Driver.Config, FaultHarness.Ct);
        return other.State;
    }

    /// <summary>The running VMM, pinned by a pidfd before the operation, so that its end can be awaited after it.</summary>
    public Kiln.Interop.PidFd PinVmm() =>
        Kiln.Interop.PidFd.TryOpen(Driver.Pid ?? throw new InvalidOperationException("no VMM runs")) ?? throw new InvalidOperationException("the VMM ended already");

    /// <summary>
    /// After the VMM was killed or exited: once it has ended (<paramref name="vmm"/>'s pidfd; an exiting VMM has closed
    /// its socket and lost its command line a moment before the kernel counts it dead), another driver must not find
    /// it live.
    /// </summary>
    public async Task AssertAnotherDriverSeesTheVmmGoneAsync(Kiln.Interop.PidFd vmm)
    {
        await vmm.WaitForExitAsync(FaultHarness.Ct).WaitAsync(TimeSpan.FromSeconds(30), FaultHarness.Ct);
        var seen = await StateSeenByAnotherDriverAsync();
        Assert.True(seen is not (SandboxState.Running or SandboxState.Paused), $"another driver found the dead VMM's sandbox {seen}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Driver.StopAsync(TimeSpan.Zero, CancellationToken.None);
        }
        finally
        {
            await Driver.DisposeAsync();
            FaultHarness.AssertNoVmm(Driver.SocketPath);
            Root.Dispose();
        }
    }
}
