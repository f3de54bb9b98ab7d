using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class SnapshotTests
{
    private static async Task<(string Snap, string Mem)> CreateSnapshot(TempDir dir, Fc fc)
    {
        var data = dir.File("data.img", 1 << 20);
        await fc.Ok("PUT", "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 64}""");
        await fc.Ok("PUT", "/boot-source", $$"""{"kernel_image_path": "{{fc.Kernel}}", "boot_args": "console=ttyS0"}""");
        await fc.Ok("PUT", "/drives/data", $$"""{"drive_id": "data", "path_on_host": "{{data}}", "is_root_device": false}""");
        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{Fc.UniqueTap()}}", "guest_mac": "06:00:ac:10:00:02"}""");
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.Ok("PUT", "/mmds", """{"k": "v"}""");
        await fc.Ok("PUT", "/actions", """{"action_type": "InstanceStart"}""");
        await fc.Ok("PATCH", "/vm", """{"state": "Paused"}""");
        await fc.Ok("PUT", "/snapshot/create", $$"""{"snapshot_path": "{{dir["snap"]}}", "mem_file_path": "{{dir["mem"]}}"}""");
        return (dir["snap"], dir["mem"]);
    }

    [Fact]
    public async Task A_snapshot_writes_a_state_file_and_a_memory_file_as_large_as_guest_memory()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        var (snap, mem) = await CreateSnapshot(dir, fc);

        Assert.True(new FileInfo(snap).Length > 0);
        Assert.Equal(64L * 1024 * 1024, new FileInfo(mem).Length);
        await using var describe = FakeProcess.Start(["--describe-snapshot", snap]);
        Assert.Equal(0, await describe.WaitExitAsync(TimeSpan.FromSeconds(20), Fc.Ct));
        Assert.StartsWith("v10.0.0\n", describe.Output);
    }

    [Theory]
    [InlineData(true, "Running")]
    [InlineData(false, "Paused")]
    public async Task A_fresh_process_loads_the_snapshot_with_its_configuration(bool resume, string state)
    {
        using var dir = new TempDir();
        string before;
        await using (var fc = await Fc.StartAsync(dir))
        {
            await CreateSnapshot(dir, fc);
            before = (await fc.Get("/vm/config")).Body;
        }

        File.Delete(dir["v.sock"]);
        await using var restored = await Fc.StartAsync(dir, ["--id", "restored"], socket: "api2.sock");

        await restored.Ok("PUT", "/snapshot/load", $$"""{"snapshot_path": "{{dir["snap"]}}", "mem_backend": {"backend_type": "File", "backend_path": "{{dir["mem"]}}"}, "resume_vm": {{(resume ? "true" : "false")}}}""");

        Assert.Equal(state, await restored.StateAsync());
        Assert.Equal(before, (await restored.Get("/vm/config")).Body);
        Assert.Equal("""{"k":"v"}""", (await restored.Get("/mmds")).Body);
        Assert.Equal(["fc_api", "fc_vcpu 0", "fc_vcpu 1", "firecracker"], FakeProcess.FirecrackerThreads(restored.Process.Threads()));
        Assert.True(File.Exists(dir["v.sock"]));
    }

    [Fact]
    public async Task Overrides_change_the_tap_and_the_vsock_path_on_load()
    {
        using var dir = new TempDir();
        await using (var fc = await Fc.StartAsync(dir))
        {
            await CreateSnapshot(dir, fc);
        }

        await using var restored = await Fc.StartAsync(dir, ["--id", "restored"], socket: "api2.sock");
        var tap = Fc.UniqueTap();
        await restored.Ok("PUT", "/snapshot/load", $$$"""{"snapshot_path": "{{{dir["snap"]}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{dir["mem"]}}}"}, "network_overrides": [{"iface_id": "eth0", "host_dev_name": "{{{tap}}}"}], "vsock_override": {"uds_path": "{{{dir["v2.sock"]}}}"}}""");

        var config = JsonNode.Parse((await restored.Get("/vm/config")).Body)!;
        Assert.Equal(tap, config["network-interfaces"]![0]!["host_dev_name"]!.GetValue<string>());
        Assert.Equal(dir["v2.sock"], config["vsock"]!["uds_path"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_load_after_configuring_is_refused_and_the_process_lives_on()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}""");

        var answer = await fc.Put("/snapshot/load", $$$"""{"snapshot_path": "{{{dir["snap"]}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{dir["mem"]}}}"}}""");

        Assert.Equal("Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.", Fc.Fault(answer));
        Assert.Equal("Not started", await fc.StateAsync());
    }

    [Fact]
    public async Task A_load_that_fails_otherwise_is_answered_then_ends_the_process_with_1()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/logger", """{"level": "Info"}""");

        var answer = await fc.Put("/snapshot/load", $$$"""{"snapshot_path": "{{{dir["missing"]}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{dir["mem"]}}}"}}""");

        Assert.Equal("Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Failed to open snapshot file: No such file or directory (os error 2)", Fc.Fault(answer));
        Assert.Equal(1, await fc.Process.WaitExitAsync(TimeSpan.FromSeconds(20), Fc.Ct));
        // rpc_interface.rs (fatal_error = Restore) and main.rs (MainError::RunWithApi, GenericError).
        Assert.Contains("[test-vm:main] RunWithApiError error: Failed to build MicroVM: Loading snapshot failed..\n", fc.Process.Output);
        Assert.Contains("Error: RunWithApi(BuildMicroVmError(Restore))", fc.Process.Output);
        Assert.Contains("Firecracker exiting with error. exit_code=1", fc.Process.Output);
    }

    [Fact]
    public async Task Creating_a_snapshot_of_a_running_VM_or_into_a_missing_directory_is_refused()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.BootAsync();

        var running = await fc.Put("/snapshot/create", $$"""{"snapshot_path": "{{dir["snap"]}}", "mem_file_path": "{{dir["mem"]}}"}""");
        await fc.Ok("PATCH", "/vm", """{"state": "Paused"}""");
        var nodir = await fc.Put("/snapshot/create", $$"""{"snapshot_path": "{{dir["no/snap"]}}", "mem_file_path": "{{dir["no/mem"]}}"}""");

        Assert.Equal("Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running", Fc.Fault(running));
        Assert.Equal("Create snapshot error: Cannot perform open on the snapshot backing file: No such file or directory (os error 2)", Fc.Fault(nodir));
    }
}
