using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Api;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>The library's wire records and the stand-in understand each other both ways.</summary>
public sealed class WireRecordTests
{
    [Fact]
    public async Task A_fully_configured_vm_config_parses_into_the_librarys_records_with_nothing_left_over()
    {
        using var dir = new TempDir();
        var root = dir.File("root.ext4", 1 << 20);
        var pmem = dir.File("pmem.img", 2 << 20);
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256, "smt": true, "track_dirty_pages": true}""");
        await fc.Ok("PUT", "/boot-source", $$"""{"kernel_image_path": "{{fc.Kernel}}", "boot_args": "console=ttyS0"}""");
        await fc.Ok("PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"" + root + "\", \"is_root_device\": true, \"cache_type\": \"Writeback\", \"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}}}");
        await fc.Ok("PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": \"" + Fc.UniqueTap() + "\", \"guest_mac\": \"06:00:AC:10:00:02\", \"rx_rate_limiter\": {\"ops\": {\"size\": 10, \"one_time_burst\": 5, \"refill_time\": 1000}}}");
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.Ok("PUT", "/balloon", """{"amount_mib": 16, "deflate_on_oom": false, "stats_polling_interval_s": 5}""");
        await fc.Ok("PUT", "/entropy", "{}");
        await fc.Ok("PUT", "/mmds/config", """{"network_interfaces": ["eth0"], "version": "V2"}""");
        await fc.Ok("PUT", "/hotplug/memory", """{"total_size_mib": 1024, "slot_size_mib": 256}""");
        await fc.Ok("PUT", "/pmem/pm0", $$"""{"id": "pm0", "path_on_host": "{{pmem}}"}""");
        await fc.Ok("PUT", "/cpu-config", """{"kvm_capabilities": ["!56"]}""");

        var body = JsonNode.Parse((await fc.Get("/vm/config")).Body)!;
        var ctx = FirecrackerJsonContext.Default;
        var machine = body["machine-config"].Deserialize(ctx.MachineConfiguration)!;
        var drive = Assert.Single(body["drives"].Deserialize(ctx.IReadOnlyListDrive)!);
        var net = Assert.Single(body["network-interfaces"].Deserialize(ctx.IReadOnlyListNetworkInterface)!);
        var vsock = body["vsock"].Deserialize(ctx.Vsock)!;
        var hotplug = body["memory-hotplug"].Deserialize(ctx.MemoryHotplugConfig)!;
        var pmemDevice = Assert.Single(body["pmem"].Deserialize(ctx.IReadOnlyListPmem)!);
        var mmds = body["mmds-config"].Deserialize(ctx.MmdsConfig)!;

        Assert.Equal(2, machine.VcpuCount);
        Assert.Equal("rootfs", drive.DriveId);
        Assert.Null(drive.ExtensionData);
        Assert.Equal("06:00:ac:10:00:02", net.GuestMac);
        Assert.Null(net.ExtensionData);
        Assert.Equal(3u, (uint)vsock.GuestCid);
        Assert.Equal(1024, (int)hotplug.TotalSizeMib!);
        Assert.Equal("pm0", pmemDevice.Id);
        Assert.Equal("eth0", Assert.Single(mmds.NetworkInterfaces));
    }

    [Fact]
    public async Task The_whole_vm_config_parses_into_FullVmConfiguration()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/balloon", """{"amount_mib": 16, "deflate_on_oom": false}""");

        var config = JsonSerializer.Deserialize((await fc.Get("/vm/config")).Body, FirecrackerJsonContext.Default.FullVmConfiguration)!;

        Assert.Null(config.ExtensionData);
        Assert.Equal(16, config.Balloon!.AmountMib);
    }

    [Fact]
    public async Task The_librarys_serialised_configuration_boots_the_stand_in_as_a_config_file()
    {
        using var dir = new TempDir();
        var kernel = dir.File("vmlinux.bin");
        var ctx = FirecrackerJsonContext.Default;
        var config = new JsonObject
        {
            ["boot-source"] = JsonSerializer.SerializeToNode(new BootSource { KernelImagePath = kernel, BootArgs = "console=ttyS0 reboot=k" }, ctx.BootSource),
            ["machine-config"] = JsonSerializer.SerializeToNode(new MachineConfiguration { VcpuCount = 2, MemSizeMib = 128 }, ctx.MachineConfiguration),
            ["drives"] = new JsonArray(),
        };
        await File.WriteAllTextAsync(dir["vm.json"], config.ToJsonString(), Fc.Ct);

        await using var fc = await Fc.StartAsync(dir, ["--id", "lib", "--config-file", dir["vm.json"]]);

        var info = JsonSerializer.Deserialize((await fc.Get("/")).Body, FirecrackerJsonContext.Default.InstanceInfo)!;
        Assert.Equal("lib", info.Id);
        Assert.Equal("Running", await fc.StateAsync());
    }
}
