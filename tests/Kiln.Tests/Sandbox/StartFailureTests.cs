using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

public sealed class StartFailureTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(FirecrackerHypervisor Driver, TempRoot Root)> CreateAsync(Dictionary<string, string> knobs,
        Func<HypervisorConfig, HypervisorConfig>? tweak = null, bool queueDrive = false)
    {
        var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        config = tweak?.Invoke(config) ?? config;
        var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Environment = knobs });
        await driver.CreateAsync("fail", config, Ct);
        if (queueDrive)
            await driver.AddDeviceAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "q.img", 1)) { Id = "queued" }, Ct);
        return (driver, root);
    }

    private static void AssertNothingLeft(FirecrackerHypervisor driver)
    {
        Assert.Empty(ProcessScan.WithCommandLineContaining(driver.SocketPath));
        Assert.Equal(["state.json"], Directory.GetFileSystemEntries(driver.SandboxDirectory).Select(Path.GetFileName));
        Assert.Equal(SandboxState.Created, driver.State);
        Assert.Null(driver.Pid);
        Assert.Null(driver.Api);
    }

    [Theory]
    [InlineData("PUT /machine-config", "machine-config")]
    [InlineData("PUT /boot-source", "boot-source")]
    [InlineData("PUT /drives/rootfs", "rootfs")]
    [InlineData("PUT /drives/drive_1", "block-pool")]
    [InlineData("PUT /drives/queued", "device-0-block")]
    [InlineData("PUT /actions", "instance-start")]
    public async Task A_step_answered_400_fails_the_start_with_its_step_and_fault_and_leaves_nothing(string request, string step)
    {
        var (driver, root) = await CreateAsync(new() { ["FAKE_FC_FAIL"] = $"{request}=400:Injected fault for {step}" }, queueDrive: true);
        using var _ = root;
        await using var __ = driver;

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        Assert.Equal(step, e.Step);
        Assert.Equal($"Injected fault for {step}", e.FaultMessage);
        Assert.Contains(step, e.Message);
        // Firecracker's log says what it refused; its output follows.
        Assert.Contains("Running Firecracker", e.OutputTail);
        Assert.Contains($"Injected fault for {step}", e.OutputTail);
        Assert.Equal("fail", e.SandboxId);
        AssertNothingLeft(driver);
    }

    [Fact]
    public async Task A_vmm_that_exits_before_its_socket_fails_the_start_at_api_ready_with_its_exit_code()
    {
        var (driver, root) = await CreateAsync(new() { ["FAKE_FC_EXIT_AT"] = "before-socket", ["FAKE_FC_EXIT_CODE"] = "42" });
        using var _ = root;
        await using var __ = driver;

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        Assert.Equal("api-ready", e.Step);
        var exited = Assert.IsType<VmmExitedException>(e.InnerException);
        Assert.Equal(new VmmProcessState.Exited(42), exited.Final);
        Assert.Null(e.FaultMessage);
        AssertNothingLeft(driver);
    }

    [Fact]
    public async Task An_api_that_never_appears_fails_the_start_after_the_api_ready_timeout()
    {
        var (driver, root) = await CreateAsync(new() { ["FAKE_FC_NO_API_SOCKET"] = "1" },
            c => c with { ApiReadyTimeout = TimeSpan.FromMilliseconds(300) });
        using var _ = root;
        await using var __ = driver;

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        Assert.Equal("api-ready", e.Step);
        Assert.IsType<TimeoutException>(e.InnerException);
        AssertNothingLeft(driver);
    }

    [Fact]
    public async Task A_slow_api_is_waited_for_without_failing_the_start()
    {
        var (driver, root) = await CreateAsync(new() { ["FAKE_FC_API_DELAY_MS"] = "400" });
        using var _ = root;
        await using var __ = driver;

        await driver.StartAsync(Ct);

        Assert.Equal(SandboxState.Running, driver.State);
    }

    [Fact]
    public async Task The_api_ready_deadline_runs_on_the_injected_clock()
    {
        using var root = new TempRoot();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions
        {
            TimeProvider = clock,
            Environment = new Dictionary<string, string> { ["FAKE_FC_NO_API_SOCKET"] = "1" },
        });
        await driver.CreateAsync("clock", SandboxTarget.Fake(root).Config(root) with { ApiReadyTimeout = TimeSpan.FromHours(1) }, Ct);

        // A wall-clock safety net only: should the wait below fail, the start must not hold the driver for an hour.
        // It would end the start as cancelled, which the assertions refuse.
        using var safety = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        safety.CancelAfter(TimeSpan.FromSeconds(90));
        var start = driver.StartAsync(safety.Token);
        // Wall-clock time alone never ends the wait (an hour); advancing the injected clock past it does.
        await Eventually.FileContainsAsync(driver.VmmLogPath, "Running Firecracker", TimeSpan.FromSeconds(30));
        while (!start.IsCompleted)
        {
            clock.Advance(TimeSpan.FromMinutes(30));
            await Task.WhenAny(start, Task.Delay(50, Ct));
        }

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => start);
        Assert.Equal("api-ready", e.Step);
        Assert.IsType<TimeoutException>(e.InnerException);
        AssertNothingLeft(driver);
    }

    [Fact]
    public async Task Cancelling_a_start_kills_the_vmm_and_leaves_nothing()
    {
        var (driver, root) = await CreateAsync(new() { ["FAKE_FC_HANG"] = "PUT /boot-source" });
        using var _ = root;
        await using var __ = driver;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        // Cancel once the VMM has logged the request it will never answer.
        var canceller = Task.Run(async () =>
        {
            await Eventually.FileContainsAsync(driver.VmmLogPath, "\"/boot-source\"", TimeSpan.FromSeconds(30));
            await cts.CancelAsync();
        }, Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(cts.Token));
        await canceller;

        Assert.Equal("boot-source", e.Step);
        Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
        AssertNothingLeft(driver);
    }

    [Theory]
    [InlineData("with-dash")]
    [InlineData("drive_3")]
    [InlineData("rootfs")]
    public async Task Boot_time_drive_ids_must_be_firecracker_resource_ids_and_not_reserved(string id)
    {
        var (driver, root) = await CreateAsync([]);
        using var _ = root;
        await using var __ = driver;
        var e = await Assert.ThrowsAsync<SandboxConfigurationException>(() =>
            driver.AddDeviceAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "x.img", 1)) { Id = id }, Ct));
        Assert.Equal(nameof(BlockDevice.Id), e.PropertyName);
    }

    [Fact]
    public async Task A_sandbox_id_with_dots_and_underscores_runs_under_an_instance_id_firecracker_accepts()
    {
        using var root = new TempRoot();
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("my_sb.1", SandboxTarget.Fake(root).Config(root), Ct);

        await driver.StartAsync(Ct);

        Assert.Equal("my-sb-1", (await driver.Api!.DescribeInstanceAsync(Ct)).Id);
    }

    [Fact]
    public async Task Memory_resizes_through_the_configured_hotplug_region_and_not_beyond_it()
    {
        var (driver, root) = await CreateAsync([], c => c with { MemoryHotplug = new MemoryHotplugSettings(1024, 128, 2) });
        using var _ = root;
        await using var __ = driver;
        await driver.StartAsync(Ct);

        var result = await driver.ResizeMemoryAsync(512, 0, probe: false, Ct);

        Assert.Equal(new MemoryResizeResult(512, 384), result);
        Assert.Equal(384, (await driver.Api!.GetMemoryHotplugAsync(Ct)).RequestedSizeMib);
        var e = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.ResizeMemoryAsync(4096, 0, false, Ct));
        Assert.Equal(nameof(HypervisorConfig.MemoryHotplug), e.PropertyName);
    }

    [Fact]
    public async Task A_stale_socket_file_does_not_stop_a_start()
    {
        var (driver, root) = await CreateAsync([]);
        using var _ = root;
        await using var __ = driver;
        await File.WriteAllTextAsync(driver.SocketPath, "left by a killed firecracker", Ct);

        await driver.StartAsync(Ct);

        Assert.Equal(SandboxState.Running, driver.State);
    }

    [Fact]
    public async Task A_vmm_that_ignores_sigterm_is_killed_once_the_stop_timeout_passes()
    {
        var (driver, root) = await CreateAsync(new() { ["FAKE_FC_IGNORE_SIGTERM"] = "1" },
            c => c with { StopTimeout = TimeSpan.FromMilliseconds(300) });
        using var _ = root;
        await using var __ = driver;
        await driver.StartAsync(Ct);
        var socket = driver.SocketPath;
        var started = DateTime.UtcNow;

        await driver.StopAsync(Ct);

        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(290), "stopped before the grace period ended");
        Assert.Equal(SandboxState.Stopped, driver.State);
        Assert.Empty(ProcessScan.WithCommandLineContaining(socket));
    }

    [Fact]
    public async Task A_stop_with_its_own_zero_grace_period_kills_at_once_and_keeps_the_configured_timeout()
    {
        var configured = TimeSpan.FromMinutes(10);
        var (driver, root) = await CreateAsync(new() { ["FAKE_FC_IGNORE_SIGTERM"] = "1" }, c => c with { StopTimeout = configured });
        using var _ = root;
        await using var __ = driver;
        await driver.StartAsync(Ct);
        var socket = driver.SocketPath;
        // Were the configured ten minutes used, this deadline would cancel the stop and fail the test.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));

        await driver.StopAsync(TimeSpan.Zero, deadline.Token);

        Assert.Equal(SandboxState.Stopped, driver.State);
        Assert.Empty(ProcessScan.WithCommandLineContaining(socket));
        Assert.Equal(configured, driver.Config.StopTimeout);
        await using var reloaded = new FirecrackerHypervisor();
        await reloaded.CreateAsync("fail", driver.Config, Ct);
        Assert.Equal(configured, reloaded.Config.StopTimeout);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => driver.StopAsync(TimeSpan.FromSeconds(-1), Ct));
    }

    [Fact]
    public async Task Operations_in_the_wrong_state_fail_with_the_expected_and_actual_states()
    {
        var (driver, root) = await CreateAsync([]);
        using var _ = root;
        await using var __ = driver;

        var e = await Assert.ThrowsAsync<SandboxStateException>(() => driver.PauseAsync(Ct));
        Assert.Equal(SandboxState.Created, e.Actual);
        Assert.Equal([SandboxState.Running], e.Expected);
        await Assert.ThrowsAsync<SandboxStateException>(() => driver.HotplugAddAsync(new BlockDevice("/x"), Ct));
        await Assert.ThrowsAsync<HypervisorNotSupportedException>(() => driver.ResizeVcpusAsync(4, Ct));
        await Assert.ThrowsAsync<HypervisorNotSupportedException>(() => driver.ResizeMemoryAsync(512, 0, false, Ct));
        await Assert.ThrowsAsync<HypervisorNotSupportedException>(() => driver.HotplugAddAsync(new NetworkDevice("tap0"), Ct));
        await driver.StopAsync(Ct);
        Assert.Equal(SandboxState.Created, driver.State);
        Assert.Equal(HypervisorCapabilities.BlockDeviceHotplug | HypervisorCapabilities.Snapshots, driver.Capabilities);
    }

    [Fact]
    public async Task A_read_only_hot_plug_is_refused_because_firecracker_cannot_patch_is_read_only()
    {
        var (driver, root) = await CreateAsync([]);
        using var _ = root;
        await using var __ = driver;
        await driver.StartAsync(Ct);

        var e = await Assert.ThrowsAsync<HypervisorNotSupportedException>(() =>
            driver.HotplugAddAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "ro.img", 1)) { ReadOnly = true }, Ct));
        Assert.Contains("is_read_only", e.Message);
        Assert.All(driver.PoolSlots, s => Assert.Null(s.HostPath));
    }

    [Fact]
    public async Task One_file_cannot_be_hot_plugged_into_two_slots()
    {
        var (driver, root) = await CreateAsync([]);
        using var _ = root;
        await using var __ = driver;
        await driver.StartAsync(Ct);
        var disk = LifecycleTests.MakeDisk(root, "twice.img", 1);
        await driver.HotplugAddAsync(new BlockDevice(disk), Ct);

        await Assert.ThrowsAsync<SandboxException>(() => driver.HotplugAddAsync(new BlockDevice(disk), Ct));

        Assert.Null(driver.PoolSlots[1].HostPath);
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData("..")]
    public async Task Create_refuses_an_unsafe_id_before_touching_the_disk(string id)
    {
        using var root = new TempRoot();
        await using var driver = new FirecrackerHypervisor();
        await Assert.ThrowsAsync<InvalidSandboxIdException>(() => driver.CreateAsync(id, SandboxTarget.Fake(root).Config(root), Ct));
        Assert.False(Directory.Exists(root.Combine("sb")));
    }
}
