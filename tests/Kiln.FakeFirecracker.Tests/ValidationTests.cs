using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>What Firecracker checks before it answers 204, with its fault texts.</summary>
public sealed class ValidationTests
{
    private const string VcpuFault = "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.";
    private const string Serde = "An error occurred when deserializing the json body of a request: ";

    public static TheoryData<string, string, string, string> FreshVmFaults() => new()
    {
        { "PUT", "/machine-config", """{"vcpu_count": 0, "mem_size_mib": 128}""", VcpuFault },
        { "PUT", "/machine-config", """{"vcpu_count": 33, "mem_size_mib": 128}""", VcpuFault },
        { "PUT", "/machine-config", """{"vcpu_count": 3, "mem_size_mib": 128, "smt": true}""", VcpuFault },
        { "PUT", "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 0}""", "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size." },
        { "PUT", "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 129, "huge_pages": "2M"}""", "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size." },
        { "PUT", "/machine-config", """{"vcpu_count": 2}""", Serde + "missing field `mem_size_mib` at line 1 column 17." },
        { "PUT", "/machine-config", """{"vcpu_count": "two", "mem_size_mib": 128}""", Serde + "invalid type: string \"two\", expected u8 at line 1 column 20." },
        { "PUT", "/machine-config", """{"vcpu_count": 300, "mem_size_mib": 128}""", Serde + "invalid value: integer `300`, expected u8 at line 1 column 18." },
        { "PUT", "/machine-config", """{"vcpu_count": -1, "mem_size_mib": 128}""", Serde + "invalid value: integer `-1`, expected u8 at line 1 column 17." },
        { "PUT", "/machine-config", """{"vcpu_count": 1.5, "mem_size_mib": 128}""", Serde + "invalid type: floating point `1.5`, expected u8 at line 1 column 18." },
        { "PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128, "smt": "yes"}""", Serde + "invalid type: string \"yes\", expected a boolean at line 1 column 51." },
        { "PUT", "/machine-config", """{"vcpu_count": 1, "vcpu_count": 2, "mem_size_mib": 128}""", Serde + "duplicate field `vcpu_count` at line 1 column 30." },
        { "PATCH", "/machine-config", "{}", "Empty PATCH request." },
        { "PUT", "/boot-source", """{"kernel_image_path": "/nonexistent/vmlinux"}""", "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)" },
        { "PUT", "/boot-source", """{"kernel_image_path": null}""", Serde + "invalid type: null, expected a string at line 1 column 26." },
        { "PUT", "/boot-source", """{"kernel_image_path": "/dev/null"} x""", Serde + "trailing characters at line 1 column 36." },
        { "PUT", "/boot-source", """{"kernel_image_path": "/dev/null",}""", Serde + "trailing comma at line 1 column 35." },
        { "PUT", "/boot-source", """{"kernel_image_path": "/dev/null" """, Serde + "EOF while parsing an object at line 1 column 34." },
        { "PUT", "/boot-source", "[1]", Serde + "invalid type: sequence, expected struct BootSourceConfig at line 1 column 0." },
        { "PUT", "/actions", """{"action_type": "InstanceStart"}""", "Start microvm error: Cannot start microvm without kernel configuration." },
        { "PUT", "/actions", """{"action_type": 1}""", Serde + "expected value at line 1 column 17." },
        { "PUT", "/vm", """{"state": "Paused"}""", "Invalid request method and/or path: PUT vm." },
        { "GET", "/no-such-path", "", "Invalid request method and/or path: GET no-such-path." },
        { "PUT", "/drives/", """{"drive_id": "x", "is_root_device": false}""", "The ID cannot be empty." },
        { "PUT", "/drives/bad-id", """{"drive_id": "bad-id", "is_root_device": false}""", "API Resource IDs can only contain alphanumeric characters and underscores." },
        { "PUT", "/drives/a", """{"drive_id": "b", "is_root_device": false}""", "The id from the path does not match the id from the body!" },
        { "PUT", "/drives/a", """{"drive_id": "a", "is_root_device": false, "path_on_host": "/nonexistent.img"}""", "Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: No such file or directory (os error 2) /nonexistent.img" },
        { "PUT", "/drives/a", """{"drive_id": "a", "is_root_device": false, "io_engine": "Fast"}""", Serde + "unknown variant `Fast`, expected `Async` or `Sync` at line 1 column 62." },
        { "PUT", "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "a-very-long-tap-name"}""", "Network config error: Could not create the network device: Open tap device failed: Invalid interface name" },
        { "PUT", "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz"}""", Serde + "invalid MAC address: zz at line 1 column 63." },
        { "PUT", "/mmds/config", """{"network_interfaces": ["eth9"]}""", "MMMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface." },
        { "GET", "/balloon", "", "Balloon config error: No balloon device found." },
        { "PUT", "/logger", """{"level": "Chatty"}""", Serde + "Invalid LevelFilter at line 1 column 18." },
        { "PUT", "/snapshot/load", """{"snapshot_path": "/x"}""", Serde + "missing field: either `mem_backend` or `mem_file_path` is required." },
        { "PUT", "/snapshot/load", """{"snapshot_path": "/x", "mem_file_path": "/y", "mem_backend": {"backend_type": "File", "backend_path": "/y"}}""", Serde + "too many fields: either `mem_backend` or `mem_file_path` exclusively is required." },
    };

    public static TheoryData<string, string, string, string, string> FreshVmFaultsOnEachTarget() => FirecrackerTarget.Each(FreshVmFaults());

    [Theory]
    [MemberData(nameof(FreshVmFaultsOnEachTarget))]
    public async Task A_fresh_VM_refuses_a_bad_request_with_Firecrackers_fault_message(string method, string path, string body, string fault, string target)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, target: FirecrackerTarget.Require(target));

        var answer = await fc.SendAsync(method, path, body.Length == 0 ? null : body);

        Assert.Equal(400, answer.Status);
        Assert.Equal(fault, Fc.Fault(answer));
    }

    [Fact]
    public async Task Only_one_root_device_is_allowed_but_the_same_drive_may_be_put_again()
    {
        using var dir = new TempDir();
        var a = dir.File("a.img");
        var b = dir.File("b.img");
        await using var fc = await Fc.StartAsync(dir);

        await fc.Ok("PUT", "/drives/root", $$"""{"drive_id": "root", "path_on_host": "{{a}}", "is_root_device": true}""");
        var second = await fc.Put("/drives/other", $$"""{"drive_id": "other", "path_on_host": "{{b}}", "is_root_device": true}""");
        await fc.Ok("PUT", "/drives/root", $$"""{"drive_id": "root", "path_on_host": "{{b}}", "is_root_device": true, "is_read_only": true}""");

        Assert.Equal("Drive config error: A root block device already exists!", Fc.Fault(second));
        Assert.Contains($$"""{"drive_id":"root","partuuid":null,"is_root_device":true,"cache_type":"Unsafe","is_read_only":true,"path_on_host":"{{b}}","rate_limiter":null,"io_engine":"Sync","socket":null}""", (await fc.Get("/vm/config")).Body);
    }

    [Fact]
    public async Task A_read_write_drive_on_a_read_only_file_is_refused_with_the_os_error()
    {
        using var dir = new TempDir();
        var file = dir.File("ro.img");
        File.SetUnixFileMode(file, UnixFileMode.UserRead);
        await using var fc = await Fc.StartAsync(dir);

        var answer = await fc.Put("/drives/d", $$"""{"drive_id": "d", "path_on_host": "{{file}}", "is_root_device": false, "is_read_only": false}""");

        // root ignores file modes; anyone else gets EACCES.
        if (Environment.UserName != "root")
        {
            Assert.EndsWith($"Permission denied (os error 13) {file}", Fc.Fault(answer));
        }
        else
        {
            Assert.Equal(204, answer.Status);
        }
    }

    [Fact]
    public async Task A_MAC_address_already_used_by_another_interface_is_refused()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{Fc.UniqueTap()}}", "guest_mac": "06:00:AC:10:00:02"}""");
        var answer = await fc.Put("/network-interfaces/eth1", """{"iface_id": "eth1", "host_dev_name": "tap1", "guest_mac": "06:00:ac:10:00:02"}""");

        Assert.Equal("Network config error: The MAC address is already in use: 06:00:ac:10:00:02", Fc.Fault(answer));
    }

    [Fact]
    public async Task A_vsock_whose_socket_file_exists_is_refused_with_EADDRINUSE()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["v.sock"], "stale", Fc.Ct);
        await using var fc = await Fc.StartAsync(dir);

        var answer = await fc.Put("/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");

        Assert.Equal("Vsock config error: Cannot create backend for vsock device: Error binding to the host-side Unix socket: Address already in use (os error 98)", Fc.Fault(answer));
    }

    [Fact]
    public async Task Patching_an_unknown_drive_after_boot_says_device_not_found()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.BootAsync();

        var answer = await fc.Patch("/drives/nope", $$"""{"drive_id": "nope", "path_on_host": "{{fc.Kernel}}"}""");

        Assert.Equal("Drive config error: Unable to patch the block device: Failed perform action on device: Device not found Please verify the request arguments.", Fc.Fault(answer));
    }

    [Fact]
    public async Task A_balloon_is_reported_after_put_and_its_absence_after_boot_is_a_device_not_found()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/balloon", """{"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 1}""");
        Assert.Equal("""{"amount_mib":64,"deflate_on_oom":true,"stats_polling_interval_s":1,"free_page_hinting":false,"free_page_reporting":false}""", (await fc.Get("/balloon")).Body);
        await fc.BootAsync();

        await fc.Ok("PATCH", "/balloon", """{"amount_mib": 32}""");
        var stats = await fc.Get("/balloon/statistics");

        Assert.Equal(200, stats.Status);
        Assert.Contains("\"target_mib\":32", stats.Body);

        using var dir2 = new TempDir();
        await using var bare = await Fc.StartAsync(dir2);
        await bare.BootAsync();
        Assert.Equal("Balloon update error: Failed perform action on device: Device not found", Fc.Fault(await bare.Patch("/balloon", """{"amount_mib": 16}""")));
        Assert.Equal("Internal VMM error: Failed perform action on device: Device not found", Fc.Fault(await bare.Get("/balloon/statistics")));
    }

    [Fact]
    public async Task Memory_hotplug_is_configured_before_boot_and_resized_after()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/hotplug/memory", """{"total_size_mib": 1024}""");
        Assert.Contains("\"memory-hotplug\":{\"total_size_mib\":1024,\"block_size_mib\":2,\"slot_size_mib\":128}", (await fc.Get("/vm/config")).Body);
        await fc.BootAsync();

        await fc.Ok("PATCH", "/hotplug/memory", """{"requested_size_mib": 256}""");
        var status = await fc.Get("/hotplug/memory");

        Assert.Equal("""{"total_size_mib":1024,"slot_size_mib":128,"block_size_mib":2,"plugged_size_mib":256,"requested_size_mib":256}""", status.Body);
        // devices/virtio/mem/device.rs update_requested_size (InvalidSize, in bytes) inside VmmError::VirtioMem.
        Assert.Equal("Memory hotplug update error: Failed to create memory hotplug device: Size 2147483648 is invalid: it must be a multiple of block size and less than the total size",
            Fc.Fault(await fc.Patch("/hotplug/memory", """{"requested_size_mib": 2048}""")));
    }

    [Fact]
    public async Task Balloon_statistics_interval_can_change_after_boot_but_not_be_switched_off()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/balloon", """{"amount_mib": 8, "deflate_on_oom": true, "stats_polling_interval_s": 1}""");
        await fc.BootAsync();

        await fc.Ok("PATCH", "/balloon/statistics", """{"stats_polling_interval_s": 5}""");
        var off = await fc.Patch("/balloon/statistics", """{"stats_polling_interval_s": 0}""");

        Assert.Equal(400, off.Status);
        Assert.Contains("\"stats_polling_interval_s\":5", (await fc.Get("/balloon")).Body);
    }

    [Fact]
    public async Task MMDS_data_is_stored_patched_and_limited_in_size()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "mmds", "--mmds-size-limit", "64"]);

        Assert.Equal("{}", (await fc.Get("/mmds")).Body);
        await fc.Ok("PUT", "/mmds", """{"latest": {"meta-data": {"hostname": "kiln"}}}""");
        await fc.Ok("PATCH", "/mmds", """{"latest": {"meta-data": {"zone": "a"}}}""");
        var big = await fc.Put("/mmds", "{\"k\": \"" + new string('x', 100) + "\"}");

        Assert.Equal("""{"latest":{"meta-data":{"hostname":"kiln","zone":"a"}}}""", (await fc.Get("/mmds")).Body);
        Assert.Equal(413, big.Status);
    }

    [Fact]
    public async Task MMDS_config_naming_an_existing_interface_is_accepted_and_shown()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{Fc.UniqueTap()}}"}""");

        await fc.Ok("PUT", "/mmds/config", """{"network_interfaces": ["eth0"], "version": "V2"}""");

        Assert.Contains("""
            "mmds-config":{"version":"V2","network_interfaces":["eth0"],"ipv4_address":"169.254.169.254","imds_compat":false}
            """, (await fc.Get("/vm/config")).Body);
    }

    [Fact]
    public async Task MMDS_V1_is_flagged_as_deprecated_with_a_header_and_a_warning_even_when_refused()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        var refused = await fc.Put("/mmds/config", """{"network_interfaces": ["eth9"]}""");

        Assert.Equal(400, refused.Status);
        Assert.Contains("\r\nDeprecation: true", refused.Head);
        Assert.True(await fc.Process.WaitForOutputAsync(@"\[test-vm:fc_api\] PUT /mmds/config: V1 is deprecated\. Use V2 instead\.", TimeSpan.FromSeconds(10), Fc.Ct));
    }

    [Fact]
    public async Task A_request_line_Firecracker_cannot_parse_gets_the_raw_error_and_the_connection_is_closed()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        using var client = await ApiClient.ConnectAsync(fc.Process.ApiSocket!, Fc.Ct);

        var answer = await client.SendRawAsync("PUT /drives/bad id HTTP/1.1", "{}"u8.ToArray(), Fc.Ct);

        Assert.Equal(400, answer.Status);
        Assert.Equal("{ \"error\": \"Invalid HTTP Version: Unsupported HTTP version.\nAll previous unanswered requests will be dropped.\" }", answer.Body);
        Assert.True(await client.IsClosedAsync(Fc.Ct));
    }

    [Fact]
    public async Task A_body_over_the_payload_limit_is_refused_and_the_connection_closed()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "small", "--http-api-max-payload-size", "50"]);
        using var client = await ApiClient.ConnectAsync(fc.Process.ApiSocket!, Fc.Ct);

        var answer = await client.SendRawAsync("PUT /mmds HTTP/1.1", new byte[60], Fc.Ct);

        Assert.Equal("{ \"error\": \"Request payload with size 60 is larger than the limit of 50 allowed by server.\nAll previous unanswered requests will be dropped.\" }", answer.Body);
        Assert.True(await client.IsClosedAsync(Fc.Ct));
    }

    [Fact]
    public async Task Answers_carry_micro_http_headers_and_an_empty_reason_phrase()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        var ok = await fc.Get("/version");
        var empty = await fc.SendAsync("PUT", "/actions", null);

        Assert.Equal("HTTP/1.1 200 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 32", ok.Head);
        Assert.Equal("""{"firecracker_version":"1.16.1"}""", ok.Body);
        Assert.Equal("Empty PUT request.", Fc.Fault(empty));
    }
}
