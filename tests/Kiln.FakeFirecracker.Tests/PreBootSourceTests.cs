using System.Text.RegularExpressions;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>Pre-boot checks no recording shows, each following the Firecracker source named on it.</summary>
public sealed class PreBootSourceTests
{
    // src/vmm/src/vmm_config/memory_hotplug.rs MemoryHotplugConfig::validate, in its order.
    [Theory]
    [InlineData("""{"total_size_mib": 1024, "block_size_mib": 1}""", "Block size must not be lower than 2 MiB")]
    [InlineData("""{"total_size_mib": 1024, "block_size_mib": 256, "slot_size_mib": 128}""", "Slot size must be a multiple of block size (256 MiB)")]
    [InlineData("""{"total_size_mib": 100, "slot_size_mib": 256}""", "Total size must not be lower than slot size (256 MiB)")]
    public async Task Memory_hotplug_sizes_are_checked_as_virtio_mem_needs(string body, string fault)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        var answer = await fc.Put("/hotplug/memory", body);

        Assert.Equal("Memory hotplug config error: " + fault, Fc.Fault(answer));
    }

    // src/vmm/src/vmm_config/pmem.rs PmemBuilder::build: a block root device rules out a pmem root.
    [Fact]
    public async Task A_pmem_root_device_is_refused_when_a_drive_is_the_root()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/drives/root", $$"""{"drive_id": "root", "is_root_device": true, "path_on_host": "{{dir.File("root.img")}}"}""");

        var answer = await fc.Put("/pmem/pm0", $$"""{"id": "pm0", "path_on_host": "{{dir.File("pm.img")}}", "root_device": true}""");

        Assert.Equal("Pmem config error: Attempt to add pmem as a root device while the root device defined as a block device", Fc.Fault(answer));
    }

    // src/firecracker/src/api_server/request/machine_configuration.rs: cpu_template is deprecated in PATCH too;
    // vmm_config/machine_config.rs MachineConfig::update: "None" clears the static template.
    [Fact]
    public async Task A_cpu_template_in_a_patch_is_flagged_deprecated_and_None_clears_it()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "T2"}""");

        var patch = await fc.Patch("/machine-config", """{"cpu_template": "None"}""");

        Assert.Equal(204, patch.Status);
        Assert.Contains("Deprecation: true", patch.Head);
        // The warning is logged as the request is handled; the answer can reach us before the line leaves the pipe.
        Assert.True(await fc.Process.WaitForOutputAsync(Regex.Escape("PATCH /machine-config: cpu_template field is deprecated."), TimeSpan.FromSeconds(10), Fc.Ct), fc.Process.Output);
        Assert.Equal("""{"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}""", (await fc.Get("/machine-config")).Body);
    }

    // src/vmm/src/rpc_interface.rs: ConfigureSerial and PutCpuConfiguration do not set boot_path, so a snapshot
    // load after them is attempted (here it fails on the missing state file) rather than refused as not allowed.
    [Fact]
    public async Task Serial_and_cpu_config_do_not_rule_out_a_snapshot_load()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/serial", $$"""{"serial_out_path": "{{dir["serial.out"]}}"}""");
        await fc.Ok("PUT", "/cpu-config", """{"kvm_capabilities": ["!56"]}""");

        var answer = await fc.Put("/snapshot/load", $$$"""{"snapshot_path": "{{{dir["missing"]}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{dir["mem"]}}}"}}""");

        Assert.Equal("Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Failed to open snapshot file: No such file or directory (os error 2)", Fc.Fault(answer));
    }
}
