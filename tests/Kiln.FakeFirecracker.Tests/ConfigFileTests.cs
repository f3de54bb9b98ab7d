using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class ConfigFileTests
{
    [Fact]
    public async Task A_config_file_boots_the_VM_without_API_calls_and_the_API_still_answers()
    {
        using var dir = new TempDir();
        var kernel = dir.File("vmlinux.bin");
        var rootfs = dir.File("rootfs.ext4", 1 << 20);
        await File.WriteAllTextAsync(dir["vm.json"], $$"""
            {
              "boot-source": {"kernel_image_path": "{{kernel}}", "boot_args": "console=ttyS0 reboot=k"},
              "machine-config": {"vcpu_count": 2, "mem_size_mib": 128},
              "drives": [{"drive_id": "rootfs", "path_on_host": "{{rootfs}}", "is_root_device": true, "is_read_only": true}]
            }
            """, Fc.Ct);
        await using var fc = await Fc.StartAsync(dir, ["--id", "cfg", "--config-file", dir["vm.json"]]);

        Assert.Equal("Running", await fc.StateAsync());
        Assert.Equal("The requested operation is not supported after starting the microVM.", Fc.Fault(await fc.Put("/actions", """{"action_type": "InstanceStart"}""")));
        Assert.Contains("\"drive_id\":\"rootfs\"", (await fc.Get("/vm/config")).Body);
        Assert.Equal(["fc_api", "fc_vcpu 0", "fc_vcpu 1", "firecracker"], FakeProcess.FirecrackerThreads(fc.Process.Threads()));
        Assert.True(await fc.Process.WaitForOutputAsync("Successfully started microvm that was configured from one single json", TimeSpan.FromSeconds(5), Fc.Ct));
        Assert.True(await fc.Process.WaitForOutputAsync(@"Kernel command line: console=ttyS0 reboot=k pci=off root=/dev/vda ro virtio_mmio\.device=4K@0xc0001000:5", TimeSpan.FromSeconds(5), Fc.Ct));
    }

    [Fact]
    public async Task With_no_api_the_VM_runs_from_the_config_file_and_no_socket_appears()
    {
        using var dir = new TempDir();
        var kernel = dir.File("vmlinux.bin");
        await File.WriteAllTextAsync(dir["vm.json"], $$$"""{"boot-source": {"kernel_image_path": "{{{kernel}}}", "boot_args": "console=ttyS0"}}""", Fc.Ct);
        await using var p = FakeProcess.Start(["--no-api", "--config-file", dir["vm.json"]], dir["api.sock"]);

        Assert.True(await p.WaitForOutputAsync("Kernel command line", TimeSpan.FromSeconds(20), Fc.Ct));
        Assert.False(p.HasExited);
        Assert.False(File.Exists(dir["api.sock"]));
    }

    [Theory]
    [InlineData("""{"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}""", "missing field `boot-source`")]
    [InlineData("""{"boot-source": {"kernel_image_path": "/nonexistent"}}""", "Boot source error: The kernel file cannot be opened")]
    [InlineData("""{"boot-source": {"kernel_image_path": "/dev/null"}, "surprise": 1}""", "unknown field `surprise`")]
    public async Task A_config_file_Firecracker_cannot_apply_ends_the_process_with_1(string json, string reason)
    {
        // main.rs / api_server_adapter.rs: BuildFromJsonError inside ApiServerError::BuildFromJson inside
        // MainError::RunWithApi, which maps to GenericError (1); FACTS.md saw exit 1 for a config file's vsock path.
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["vm.json"], json, Fc.Ct);
        await using var p = FakeProcess.Start(["--config-file", dir["vm.json"]], dir["api.sock"]);

        Assert.Equal(1, await p.WaitExitAsync(TimeSpan.FromSeconds(20), Fc.Ct));
        Assert.Contains("RunWithApiError error: Failed to build MicroVM from Json: Configuration for VMM from one single json failed: ", p.Output);
        Assert.Contains(reason, p.Output);
        Assert.Contains("Firecracker exiting with error. exit_code=1", p.Output);
    }

    [Fact]
    public async Task A_config_file_vsock_path_that_exists_ends_the_process_with_1()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["v.sock"], "", Fc.Ct);
        await File.WriteAllTextAsync(dir["vm.json"], $$$"""{"boot-source": {"kernel_image_path": "/dev/null"}, "vsock": {"guest_cid": 3, "uds_path": "{{{dir["v.sock"]}}}"}}""", Fc.Ct);
        await using var p = FakeProcess.Start(["--config-file", dir["vm.json"]], dir["api.sock"]);

        Assert.Equal(1, await p.WaitExitAsync(TimeSpan.FromSeconds(20), Fc.Ct));
        Assert.Contains("Address already in use (os error 98)", p.Output);
    }

    [Fact]
    public async Task Without_the_API_a_config_file_that_cannot_be_applied_ends_the_process_with_1()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["vm.json"], """{"boot-source": {"kernel_image_path": "/nonexistent"}}""", Fc.Ct);
        await using var p = FakeProcess.Start(["--no-api", "--config-file", dir["vm.json"]]);

        Assert.Equal(1, await p.WaitExitAsync(TimeSpan.FromSeconds(20), Fc.Ct));
        Assert.Contains("RunWithoutApiError error: Failed to build MicroVM from Json: Configuration for VMM from one single json failed: Boot source error: The kernel file cannot be opened", p.Output);
    }
}
