using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class PreBootPostBootTests
{
    private const string Before = "The requested operation is not supported before starting the microVM.";
    private const string After = "The requested operation is not supported after starting the microVM.";

    public static TheoryData<string, string, string?> PostBootOnly() => new()
    {
        { "PATCH", "/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "/dev/null"}""" },
        { "PATCH", "/network-interfaces/eth0", """{"iface_id": "eth0"}""" },
        { "PATCH", "/vm", """{"state": "Paused"}""" },
        { "PUT", "/snapshot/create", """{"snapshot_path": "/tmp/x", "mem_file_path": "/tmp/y"}""" },
        { "PUT", "/actions", """{"action_type": "SendCtrlAltDel"}""" },
        { "PUT", "/actions", """{"action_type": "FlushMetrics"}""" },
        { "PATCH", "/balloon", """{"amount_mib": 1}""" },
        { "GET", "/balloon/statistics", null },
        { "PATCH", "/balloon/statistics", """{"stats_polling_interval_s": 1}""" },
        { "GET", "/hotplug/memory", null },
        { "PATCH", "/hotplug/memory", """{"requested_size_mib": 128}""" },
        { "DELETE", "/drives/rootfs", null },
    };

    public static TheoryData<string, string, string> PreBootOnly() => new()
    {
        { "PUT", "/boot-source", """{"kernel_image_path": "/dev/null"}""" },
        { "PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}""" },
        { "PATCH", "/machine-config", """{"vcpu_count": 1}""" },
        { "PUT", "/cpu-config", "{}" },
        { "PUT", "/vsock", """{"guest_cid": 3, "uds_path": "/tmp/never.sock"}""" },
        { "PUT", "/entropy", "{}" },
        { "PUT", "/balloon", """{"amount_mib": 1, "deflate_on_oom": true}""" },
        { "PUT", "/hotplug/memory", """{"total_size_mib": 1024}""" },
        { "PUT", "/logger", """{"level": "Info"}""" },
        { "PUT", "/metrics", """{"metrics_path": "/tmp/never.metrics"}""" },
        { "PUT", "/serial", "{}" },
        { "PUT", "/mmds/config", """{"network_interfaces": ["eth0"], "version": "V2"}""" },
        { "PUT", "/actions", """{"action_type": "InstanceStart"}""" },
        { "PUT", "/snapshot/load", """{"snapshot_path": "/tmp/x", "mem_backend": {"backend_type": "File", "backend_path": "/tmp/y"}}""" },
    };

    public static TheoryData<string, string, string?, string> PostBootOnlyOnEachTarget() => FirecrackerTarget.Each(PostBootOnly());

    [Theory]
    [MemberData(nameof(PostBootOnlyOnEachTarget))]
    public async Task A_post_boot_operation_before_InstanceStart_is_refused(string method, string path, string? body, string target)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, target: FirecrackerTarget.Require(target));

        var answer = await fc.SendAsync(method, path, body);

        Assert.Equal(400, answer.Status);
        Assert.Equal(Before, Fc.Fault(answer));
    }

    [Theory]
    [MemberData(nameof(PreBootOnly))]
    public async Task A_pre_boot_operation_after_InstanceStart_is_refused(string method, string path, string body)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.BootAsync();

        var answer = await fc.SendAsync(method, path, body);

        Assert.Equal(400, answer.Status);
        Assert.Equal(After, Fc.Fault(answer));
    }

    [Fact]
    public async Task Pausing_a_paused_VM_and_resuming_a_running_one_both_succeed()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.BootAsync();

        await fc.Ok("PATCH", "/vm", """{"state": "Resumed"}""");
        Assert.Equal("Running", await fc.StateAsync());
        await fc.Ok("PATCH", "/vm", """{"state": "Paused"}""");
        await fc.Ok("PATCH", "/vm", """{"state": "Paused"}""");
        Assert.Equal("Paused", await fc.StateAsync());
        await fc.Ok("PATCH", "/vm", """{"state": "Resumed"}""");
        Assert.Equal("Running", await fc.StateAsync());
    }

    [Fact]
    public async Task Drives_and_interfaces_can_be_hot_plugged_after_boot_only_with_PCI()
    {
        using var dir = new TempDir();
        var data = dir.File("data.img", 1 << 20);
        await using var fc = await Fc.StartAsync(dir, ["--id", "pci-vm", "--enable-pci"]);
        await fc.BootAsync();

        await fc.Ok("PUT", "/drives/extra", $$"""{"drive_id": "extra", "path_on_host": "{{data}}", "is_root_device": false}""");
        var tap = Fc.UniqueTap();
        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{tap}}"}""");
        await fc.Ok("DELETE", "/drives/extra", null!);

        var config = (await fc.Get("/vm/config")).Body;
        Assert.DoesNotContain("\"extra\"", config);
        Assert.Contains($"\"{tap}\"", config);
    }

    [Fact]
    public async Task Without_PCI_a_drive_put_after_boot_says_PCI_is_not_enabled()
    {
        using var dir = new TempDir();
        var data = dir.File("data.img", 1 << 20);
        await using var fc = await Fc.StartAsync(dir);
        await fc.BootAsync();

        var put = await fc.Put("/drives/extra", $$"""{"drive_id": "extra", "path_on_host": "{{data}}", "is_root_device": false}""");
        var net = await fc.Put("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0"}""");

        Assert.Equal("PCI is not enabled", Fc.Fault(put));
        Assert.Equal("PCI is not enabled", Fc.Fault(net));
    }
}
