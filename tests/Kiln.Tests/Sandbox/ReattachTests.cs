using System.Diagnostics;
using Kiln.Host;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

public sealed class ReattachTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_second_driver_reattaches_to_a_detached_vmm_and_can_hot_plug_read_threads_and_stop_it()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        var first = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Ownership = VmmOwnership.Detached });
        await first.CreateAsync("re", config, Ct);
        await first.StartAsync(Ct);
        var pid = first.Pid!.Value;
        var a = LifecycleTests.MakeDisk(root, "a.img", 2);
        await first.HotplugAddAsync(new BlockDevice(a), Ct);
        await first.DisposeAsync();
        var identity = ProcFs.TryGetIdentity(pid);
        Assert.NotNull(identity); // a detached VMM outlives its driver

        await using var second = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, "re", cancellationToken: Ct);

        Assert.Equal(SandboxState.Running, second.State);
        Assert.Equal(pid, second.Pid);
        Assert.Equal(VmmOwnership.Detached, second.Ownership);
        Assert.Equal(a, second.PoolSlots[0].HostPath);
        var b = Assert.IsType<BlockHotplugResult>(await second.HotplugAddAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "b.img", 2)), Ct));
        Assert.Equal(1, b.Slot);
        Assert.Equal(2, (await second.GetVcpuThreadIdsAsync(Ct)).Count);
        var info = await SandboxCatalog.GetAsync(config.RootDirectory, "re", Ct);
        Assert.Equal((SandboxState.Running, pid), (info.State, info.Pid));
        Assert.Equal([a, b.HostPath], info.PoolSlots.Select(s => s.HostPath));

        await second.StopAsync(Ct);

        Assert.False(ProcFs.IsSameProcess(identity));
        Assert.Equal(SandboxState.Stopped, (await SandboxCatalog.GetAsync(config.RootDirectory, "re", Ct)).State);
    }

    [Fact]
    public async Task A_driver_whose_sandbox_another_driver_started_meanwhile_refuses_to_start_a_second_vmm()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        // Owned by the first: a failing assertion cannot leave the VMM running.
        await using var first = new FirecrackerHypervisor();
        await using var second = new FirecrackerHypervisor();
        // Two `kiln run --name same` that both passed the name check: both created before either started.
        await first.CreateAsync("race", config, Ct);
        await second.CreateAsync("race", config, Ct);
        await first.StartAsync(Ct);
        var identity = ProcFs.TryGetIdentity(first.Pid!.Value)!;

        await Assert.ThrowsAsync<SandboxStateException>(() => second.StartAsync(Ct));

        Assert.True(ProcFs.IsSameProcess(identity));
        Assert.Equal(first.Pid, second.Pid);
        Assert.Single(ProcessScan.WithCommandLineContaining(config.RootDirectory));
        await first.StopAsync(Ct);
    }

    [Fact]
    public async Task Create_with_the_id_of_a_running_sandbox_reattaches_to_it()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using var first = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Ownership = VmmOwnership.Detached });
        await first.CreateAsync("same", config, Ct);
        await first.StartAsync(Ct);

        await using var second = new FirecrackerHypervisor();
        await second.CreateAsync("same", config, Ct);

        Assert.Equal(SandboxState.Running, second.State);
        Assert.Equal(first.Pid, second.Pid);
        await second.StopAsync(Ct);
        Assert.Empty(ProcessScan.WithCommandLineContaining(config.RootDirectory));
    }

    [Fact]
    public async Task Disposing_an_owning_driver_stops_its_vmm()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("owned", config, Ct);
        await driver.StartAsync(Ct);
        var identity = ProcFs.TryGetIdentity(driver.Pid!.Value)!;

        await driver.DisposeAsync();

        Assert.False(ProcFs.IsSameProcess(identity));
    }

    [Fact]
    public async Task A_recorded_pid_that_now_belongs_to_another_process_is_never_signalled()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using (var driver = new FirecrackerHypervisor())
            await driver.CreateAsync("stale", config, Ct);
        // Forge a record that claims a live process that is not that firecracker: a sleep of ours, wrong start time.
        using var bystander = Process.Start("sleep", "60");
        var statePath = SandboxPaths.For(config.RootDirectory, "stale").StatePath;
        var state = (await SandboxStateFile.TryReadAsync(statePath, Ct))!;
        await (state with { State = SandboxState.Running, Pid = bystander.Id, StartTimeTicks = 1 }).WriteAsync(statePath, Ct);

        await using var reopened = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, "stale", cancellationToken: Ct);
        await reopened.StopAsync(Ct);

        Assert.Equal(SandboxState.Stopped, reopened.State);
        Assert.False(bystander.HasExited);
        bystander.Kill();
    }

    [Fact]
    public async Task A_vmm_killed_behind_the_drivers_back_shows_as_exited_and_the_sandbox_can_start_again()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("killed", config, Ct);
        await driver.StartAsync(Ct);
        var pid = driver.Pid!.Value;

        using (var p = Process.GetProcessById(pid))
        {
            p.Kill();
            await p.WaitForExitAsync(Ct);
        }

        Assert.Equal(SandboxState.Exited, (await SandboxCatalog.GetAsync(config.RootDirectory, "killed", Ct)).State);
        await driver.StartAsync(Ct); // a VMM that died leaves a stale socket behind; start again anyway
        Assert.Equal(SandboxState.Running, driver.State);
        Assert.NotEqual(pid, driver.Pid);
        await driver.StopAsync(Ct);
        Assert.Equal(SandboxState.Stopped, driver.State);
        await driver.CleanupAsync(Ct);
        Assert.False(Directory.Exists(driver.SandboxDirectory));
    }

    [Fact]
    public async Task Boot_time_devices_survive_a_new_driver_and_go_into_the_vm_it_starts()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        HypervisorDevice[] devices =
        [
            new NetworkDevice("tap_k0") { Id = "net_a", MacAddress = "02:00:00:00:00:0a", RxBandwidth = new TokenBucketLimit(1000, 100) },
            new BlockDevice(LifecycleTests.MakeDisk(root, "q.img", 1)) { Id = "data_q", ReadOnly = true },
            new VsockDevice(7, root.Combine("v.sock")),
            new BlockDevice(LifecycleTests.MakeDisk(root, "r.img", 1)),
        ];
        await using (var first = new FirecrackerHypervisor())
        {
            await first.CreateAsync("dev", config, Ct);
            foreach (var device in devices)
                await first.AddDeviceAsync(device, Ct);
        }

        await using var second = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, "dev", cancellationToken: Ct);

        Assert.Equal(devices, second.Devices);
        Assert.Equal(devices, (await SandboxCatalog.GetAsync(config.RootDirectory, "dev", Ct)).Devices);
        await second.StartAsync(Ct);
        var vm = await second.Api!.GetExportVmConfigAsync(Ct);
        var net = Assert.Single(vm.NetworkInterfaces!);
        Assert.Equal(("net_a", "tap_k0", "02:00:00:00:00:0a"), (net.IfaceId, net.HostDevName, net.GuestMac));
        var drives = vm.Drives!.Where(d => d.DriveId is "data_q" or "disk_0").ToDictionary(d => d.DriveId);
        Assert.Equal((root.Combine("q.img"), true), (drives["data_q"].PathOnHost, drives["data_q"].IsReadOnly));
        Assert.Equal(root.Combine("r.img"), drives["disk_0"].PathOnHost);
        Assert.Equal((7u, root.Combine("v.sock")), (vm.Vsock!.GuestCid, vm.Vsock.UdsPath));

        // They are the sandbox's boot configuration: a stop and another start (another driver, by create) keep them.
        await second.StopAsync(Ct);
        await using var third = new FirecrackerHypervisor();
        await third.CreateAsync("dev", config, Ct);
        Assert.Equal(devices, third.Devices);
        await third.StartAsync(Ct);
        Assert.Equal(["data_q", "disk_0"], (await third.Api!.GetExportVmConfigAsync(Ct)).Drives!.Select(d => d.DriveId).Where(id => id is "data_q" or "disk_0"));
        await third.StopAsync(Ct);
    }

    [Fact]
    public async Task A_state_file_written_before_devices_were_persisted_still_opens_with_none()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using (var driver = new FirecrackerHypervisor())
        {
            await driver.CreateAsync("old", config, Ct);
            await driver.AddDeviceAsync(new VsockDevice(3, root.Combine("o.sock")), Ct);
        }
        var statePath = SandboxPaths.For(config.RootDirectory, "old").StatePath;
        var json = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(statePath, Ct))!.AsObject();
        Assert.True(json.Remove("devices"));
        await File.WriteAllTextAsync(statePath, json.ToJsonString(), Ct);

        await using var reopened = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, "old", cancellationToken: Ct);

        Assert.Empty(reopened.Devices);
        Assert.Empty((await SandboxCatalog.GetAsync(config.RootDirectory, "old", Ct)).Devices);
        await reopened.StartAsync(Ct);
        Assert.Null((await reopened.Api!.GetExportVmConfigAsync(Ct)).Vsock);
        await reopened.StopAsync(Ct);
    }

    [Fact]
    public async Task Opening_a_sandbox_that_does_not_exist_is_a_typed_error()
    {
        using var root = new TempRoot();
        var e = await Assert.ThrowsAsync<SandboxNotFoundException>(() => FirecrackerHypervisor.OpenAsync(root.Path, "ghost", cancellationToken: Ct));
        Assert.Equal(root.Path, e.RootDirectory);
    }
}
