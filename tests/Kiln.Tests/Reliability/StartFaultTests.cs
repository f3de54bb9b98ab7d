using Kiln.Sandbox;
using Kiln.Tests.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// Every named start step × every fault: the start fails with SandboxStartException naming the step, no VMM of this
/// sandbox runs afterwards, the files are exactly those from before the start, and state.json says Created, no PID.
/// </summary>
public sealed class StartFaultTests
{
    /// <summary>The API steps of a sandbox with a rootfs, a pool, a queued drive, a vsock and memory hot-plug.</summary>
    private static readonly (string Step, string Request)[] ApiSteps =
    [
        ("machine-config", "PUT /machine-config"),
        ("boot-source", "PUT /boot-source"),
        ("rootfs", "PUT /drives/rootfs"),
        ("block-pool", "PUT /drives/drive_1"),
        ("device-0-block", "PUT /drives/queued"),
        ("device-1-vsock", "PUT /vsock"),
        ("memory-hotplug", "PUT /hotplug/memory"),
        ("instance-start", "PUT /actions"),
    ];

    public static TheoryData<string, string, Fault> ApiStepFaults()
    {
        var data = new TheoryData<string, string, Fault>();
        foreach (var (step, request) in ApiSteps)
        {
            foreach (var fault in Enum.GetValues<Fault>())
                data.Add(step, request, fault);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ApiStepFaults))]
    public async Task A_fault_at_an_api_step_fails_the_start_there_and_leaves_nothing(string step, string request, Fault fault)
    {
        using var root = new TempRoot();
        await using var driver = await CreateAsync(root, Knobs(fault, request, step));
        var before = Files(root.Path);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var inject = InjectAsync(fault, driver.VmmLogPath, LogMarker(request), () => driver.Pid, cts);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(cts.Token));
        await inject;

        AssertFailedAt(e, step, fault);
        await AssertStartLeftNothingAsync(driver, root, before);
    }

    /// <summary>The steps after the spawn, each one a span a test can hook; the stand-in and real Firecracker alike.</summary>
    public static TheoryData<string, string> StepsOnEveryTarget()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in SandboxTarget.Names)
        {
            data.Add(target, "api-ready");
            foreach (var (step, _) in ApiSteps)
                data.Add(target, step);
        }
        return data;
    }

    /// <summary>
    /// The kill case against real Firecracker too (its API tier: everything here happens before InstanceStart, so no
    /// KVM and no guest are needed; the kernel and drives are placeholder files, which Firecracker only opens until
    /// then). The VMM is SIGKILLed, and its end awaited, as the step's span begins, so the step's request meets a dead
    /// VMM; with the stand-in this is a second route to the same failure as <see cref="Fault.Kill"/>.
    /// </summary>
    [Theory]
    [MemberData(nameof(StepsOnEveryTarget))]
    public async Task A_vmm_sigkilled_as_a_step_begins_fails_the_start_there_and_leaves_nothing(string target, string step)
    {
        using var root = new TempRoot();
        var firecracker = target == "real" ? Kiln.Testing.RealFirecracker.RequireBinary() : null;
        await using var driver = await CreateAsync(root, [], firecracker);
        var before = Files(root.Path);
        var kill = KillVmmAt("kiln.sandbox.start." + step, driver.SocketPath);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        kill.AssertKilled();
        AssertFailedAt(e, step, Fault.Kill);
        await AssertStartLeftNothingAsync(driver, root, before);
    }

    public static TheoryData<string, Fault> LocalStepFaults() => new()
    {
        { "stale-files", Fault.Fail },
        { "placeholders", Fault.Fail },
        // The first step that runs the binary is the version probe (firecracker --version), so an executable the
        // kernel cannot run fails there, before anything is spawned or created.
        { "version", Fault.Fail },
        { "api-ready", Fault.Exit },
        { "api-ready", Fault.Kill },
        { "api-ready", Fault.Cancel },
    };

    [Theory]
    [MemberData(nameof(LocalStepFaults))]
    public async Task A_fault_at_a_step_before_the_api_fails_the_start_there_and_leaves_nothing(string step, Fault fault)
    {
        using var root = new TempRoot();
        var knobs = (step, fault) switch
        {
            ("api-ready", Fault.Exit) => new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "before-socket" },
            ("api-ready", _) => new() { ["FAKE_FC_NO_API_SOCKET"] = "1" },
            _ => [],
        };
        var notAnElf = root.Script("not-firecracker", "");
        File.WriteAllText(notAnElf, "neither a script nor an ELF binary");
        await using var driver = await CreateAsync(root, knobs, step == "version" ? notAnElf : null);
        switch (step, fault)
        {
            case ("stale-files", Fault.Fail):
                Directory.CreateDirectory(driver.VmmLogPath); // the fresh log cannot be created
                break;
            case ("placeholders", Fault.Fail):
                Directory.CreateDirectory(Path.Combine(driver.SandboxDirectory, "pool-1.img")); // the second slot's
                break;
        }
        var before = Files(root.Path);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var inject = step == "api-ready" ? InjectAsync(fault, driver.VmmLogPath, "Running Firecracker", () => driver.Pid, cts) : Task.CompletedTask;

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(cts.Token));
        await inject;

        Assert.Equal(step, e.Step);
        Assert.Equal(fault == Fault.Cancel, e.InnerException is OperationCanceledException);
        await AssertStartLeftNothingAsync(driver, root, before);
    }

    [Fact]
    public async Task A_start_cancelled_before_it_begins_throws_cancelled_and_touches_nothing()
    {
        using var root = new TempRoot();
        await using var driver = await CreateAsync(root, []);
        var before = Files(root.Path);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => driver.StartAsync(cts.Token));

        await AssertStartLeftNothingAsync(driver, root, before);
    }

    private static async Task<FirecrackerHypervisor> CreateAsync(TempRoot root, Dictionary<string, string> knobs, string? firecracker = null)
    {
        var config = SandboxTarget.Fake(root).Config(root) with
        {
            MemoryHotplug = new MemoryHotplugSettings(1024, 128, 2),
            StopTimeout = TimeSpan.FromSeconds(2),
        };
        if (firecracker is not null)
            config = config with { FirecrackerPath = firecracker };
        var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Environment = knobs });
        await driver.CreateAsync("fault", config, Ct);
        await driver.AddDeviceAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "q.img", 1)) { Id = "queued" }, Ct);
        await driver.AddDeviceAsync(new VsockDevice(3, root.Combine("v.sock")), Ct);
        return driver;
    }
}
