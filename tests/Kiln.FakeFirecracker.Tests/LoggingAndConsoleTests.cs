using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class LoggingAndConsoleTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task After_PUT_logger_lines_go_to_the_file_with_level_and_origin_and_no_longer_to_stdout()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "sample-1"]);

        await fc.Ok("PUT", "/logger", $$"""{"log_path": "{{dir["fc.log"]}}", "level": "Info", "show_level": true, "show_log_origin": true}""");
        await fc.Get("/version");

        var log = await File.ReadAllTextAsync(dir["fc.log"], Fc.Ct);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[sample-1:fc_api:INFO:src/firecracker/src/api_server/parsed_request\.rs:192\] The request was executed successfully\. Status code: 204 No Content\.\n", log);
        Assert.Contains("[sample-1:fc_api:INFO:src/firecracker/src/api_server/parsed_request.rs:76] The API server received a Get request on \"/version\".", log);
        Assert.DoesNotContain("/version", fc.Process.Output);
    }

    [Fact]
    public async Task A_log_level_of_Warning_leaves_out_the_request_lines()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        await fc.Ok("PUT", "/logger", $$"""{"log_path": "{{dir["fc.log"]}}", "level": "warning"}""");
        await fc.Put("/machine-config", """{"vcpu_count": 0, "mem_size_mib": 128}""");

        var log = await File.ReadAllTextAsync(dir["fc.log"], Fc.Ct);
        Assert.DoesNotContain("The API server received", log);
        Assert.Contains("Received Error. Status code: 400 Bad Request.", log);
    }

    [Fact]
    public async Task Log_path_on_the_command_line_configures_the_logger_at_startup()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "cli", "--log-path", dir["fc.log"], "--level", "Info", "--show-level"]);

        var log = await File.ReadAllTextAsync(dir["fc.log"], Fc.Ct);
        Assert.Contains("[cli:main:INFO] Running Firecracker v1.16.1", log);
        Assert.DoesNotContain("Running Firecracker", fc.Process.Output);
    }

    [Fact]
    public async Task A_PUT_logger_without_a_level_sets_Info_again_rather_than_keeping_the_command_line_level()
    {
        // Firecracker's Logger::update (src/vmm/src/logger/logging.rs): max level = config.level or DEFAULT_LEVEL.
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--log-path", dir["first.log"], "--level", "Warning"]);

        await fc.Ok("PUT", "/logger", $$"""{"log_path": "{{dir["second.log"]}}"}""");
        await fc.Get("/version");

        Assert.DoesNotContain("Running Firecracker", await File.ReadAllTextAsync(dir["first.log"], Fc.Ct));
        Assert.Contains("The API server received a Get request on \"/version\".", await File.ReadAllTextAsync(dir["second.log"], Fc.Ct));
    }

    [Fact]
    public async Task Vm_config_warns_about_restored_VMs_before_boot_only()
    {
        // rpc_interface.rs: PrebootApiController's GetFullVmConfig is a warn!; the runtime controller logs nothing.
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "cfg", "--log-path", dir["fc.log"], "--show-level"]);

        await fc.Get("/vm/config");
        await fc.BootAsync();
        await fc.Get("/vm/config");

        var lines = (await File.ReadAllLinesAsync(dir["fc.log"], Fc.Ct)).Where(l => l.Contains("will all be empty", StringComparison.Ordinal)).ToList();
        Assert.Single(lines);
        Assert.Contains("[cfg:main:WARN] If the VM was restored from snapshot, boot-source, machine-config.smt, and machine-config.cpu_template will all be empty.", lines[0]);
    }

    [Fact]
    public async Task Metrics_get_a_line_at_InstanceStart_and_at_each_FlushMetrics_even_on_a_FIFO_nobody_reads_yet()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/metrics", $$"""{"metrics_path": "{{dir["fc.metrics"]}}"}""");
        Assert.Equal(0, new FileInfo(dir["fc.metrics"]).Length);

        await fc.BootAsync();
        await fc.Ok("PUT", "/actions", """{"action_type": "FlushMetrics"}""");

        var lines = await File.ReadAllLinesAsync(dir["fc.metrics"], Fc.Ct);
        Assert.Equal(2, lines.Length);
        var first = JsonNode.Parse(lines[0])!;
        Assert.Equal(1, first["put_api_requests"]!["machine_cfg_count"]!.GetValue<int>());
        Assert.Equal(1, first["put_api_requests"]!["actions_count"]!.GetValue<int>());
        Assert.Equal(1, JsonNode.Parse(lines[1])!["put_api_requests"]!["actions_count"]!.GetValue<int>());
        var sample = JsonNode.Parse((await File.ReadAllLinesAsync(Path.Combine(AppContext.BaseDirectory, "assets", "samples", "metrics.jsonl"), Fc.Ct))[0])!;
        Assert.Equal(sample.AsObject().Select(p => p.Key), first.AsObject().Select(p => p.Key));

        Assert.Equal(0, Mkfifo(dir["fifo"]));
        await using var fc2 = await Fc.StartAsync(dir, ["--id", "fifo", "--metrics-path", dir["fifo"]], socket: "api2.sock");
        await fc2.BootAsync();
        Assert.Equal("Running", await fc2.StateAsync());
    }

    private static int Mkfifo(string path)
    {
        using var p = System.Diagnostics.Process.Start("mkfifo", path);
        p.WaitForExit();
        return p.ExitCode;
    }

    [Fact]
    public async Task The_console_shows_the_kernel_command_line_with_what_Firecracker_appends()
    {
        using var dir = new TempDir();
        var root = dir.File("root.ext4", 64 << 20);
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{root}}", "is_root_device": true, "is_read_only": false}""");

        await fc.BootAsync();

        Assert.True(await fc.Process.WaitForOutputAsync(Regex.Escape("Kernel command line: console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw virtio_mmio.device=4K@0xc0001000:5"), Long, Fc.Ct));
        Assert.True(await fc.Process.WaitForOutputAsync(Regex.Escape("virtio_blk virtio0: [vda] 131072 512-byte logical blocks (67.1 MB/64.0 MiB)"), Long, Fc.Ct));
    }

    [Fact]
    public async Task Swapping_a_drives_backing_file_after_boot_shows_the_capacity_change_in_the_guest()
    {
        using var dir = new TempDir();
        var root = dir.File("root.ext4", 64 << 20);
        var pool = dir.File("pool0.img", 0);
        var a = dir.File("data-a.ext4", 8 << 20);
        var b = dir.File("data-b.ext4", 16 << 20);
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{root}}", "is_root_device": true}""");
        await fc.Ok("PUT", "/drives/drive_0", $$"""{"drive_id": "drive_0", "path_on_host": "{{pool}}", "is_root_device": false}""");
        await fc.BootAsync();

        await fc.Ok("PATCH", "/drives/drive_0", $$"""{"drive_id": "drive_0", "path_on_host": "{{a}}"}""");
        await fc.Ok("PATCH", "/drives/drive_0", $$"""{"drive_id": "drive_0", "path_on_host": "{{b}}"}""");

        Assert.True(await fc.Process.WaitForOutputAsync(Regex.Escape("virtio_blk virtio1: [vdb] new size: 16384 512-byte logical blocks (8.39 MB/8.00 MiB)"), Long, Fc.Ct));
        Assert.True(await fc.Process.WaitForOutputAsync("vdb: detected capacity change from 0 to 16384", Long, Fc.Ct));
        Assert.True(await fc.Process.WaitForOutputAsync(Regex.Escape("virtio_blk virtio1: [vdb] new size: 32768 512-byte logical blocks (16.8 MB/16.0 MiB)"), Long, Fc.Ct));
        Assert.True(await fc.Process.WaitForOutputAsync("vdb: detected capacity change from 16384 to 32768", Long, Fc.Ct));
    }

    [Fact]
    public async Task Without_console_on_the_command_line_the_guest_prints_nothing()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        await fc.BootAsync(bootArgs: "reboot=k panic=1");
        await fc.Get("/");

        Assert.DoesNotContain("Kernel command line", fc.Process.Output);
    }

    [Fact]
    public async Task A_serial_out_path_receives_the_console_instead_of_stdout()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/serial", $$"""{"serial_out_path": "{{dir["serial.log"]}}"}""");

        await fc.BootAsync();

        Assert.Contains("Kernel command line: console=ttyS0", await File.ReadAllTextAsync(dir["serial.log"], Fc.Ct));
        Assert.DoesNotContain("Kernel command line", fc.Process.Output);
    }

    [Fact]
    public async Task With_boot_timer_the_guest_boot_time_is_logged_at_start()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "bt", "--boot-timer"]);

        await fc.BootAsync();

        Assert.True(await fc.Process.WaitForOutputAsync(@"\[bt:fc_vcpu 0\] Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms", Long, Fc.Ct));
    }
}
