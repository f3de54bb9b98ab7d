using System.Text;
// The lifecycle through separate kiln processes against fake-firecracker, as a user would type it.
using System.Diagnostics;
using System.Text.Json;

namespace Kiln.Cli.Tests;

public sealed class LifecycleTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Fact]
    public async Task Run_detach_prints_only_the_name_and_leaves_the_vm_running_for_a_later_stop()
    {
        var run = await _root.RunAsync("run", "--detach", "--name", "vm1", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs,
            "--vcpus", "2", "--memory", "256");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("vm1\n", run.Stdout);
        var ps = await _root.PsAsync("vm1");
        Assert.Equal("Running", ps.GetProperty("state").GetString());
        Assert.Equal(2, ps.GetProperty("vcpus").GetInt32());
        Assert.Equal(256, ps.GetProperty("memoryMiB").GetInt32());
        var pid = ps.GetProperty("pid").GetInt32();
        Assert.True(Directory.Exists($"/proc/{pid}"), "the VMM must outlive the kiln that started it");

        var stop = await _root.RunAsync("stop", "vm1", "--json");

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal("Stopped", stop.Json().GetProperty("state").GetString());
        Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(" Z "), "stop must end the VMM");
        Assert.Equal("Stopped", (await _root.PsAsync("vm1")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_running_sandbox_whose_input_files_were_deleted_can_still_be_listed_inspected_stopped_and_removed()
    {
        var kernel = Path.Combine(_root.Files, "gone-vmlinux");
        var rootfs = Path.Combine(_root.Files, "gone-rootfs.ext4");
        File.Copy(_root.Kernel, kernel);
        File.Copy(_root.Rootfs, rootfs);
        var run = await _root.RunAsync("run", "--detach", "--name", "orphaned", "--kernel", kernel, "--rootfs", rootfs);
        Assert.True(run.ExitCode == 0, run.ToString());
        File.Delete(kernel);
        File.Delete(rootfs);

        var ps = await _root.PsAsync("orphaned");
        var inspect = await _root.RunAsync("inspect", "orphaned", "--json");
        var stop = await _root.RunAsync("stop", "orphaned", "--json");
        var rm = await _root.RunAsync("rm", "orphaned");

        Assert.Equal("Running", ps.GetProperty("state").GetString());
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal("Stopped", stop.Json().GetProperty("state").GetString());
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "orphaned")));
    }

    [Fact]
    public async Task Run_detach_json_describes_the_new_sandbox()
    {
        var run = await _root.RunAsync("run", "--detach", "--json", "--name", "vmj", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);

        Assert.True(run.ExitCode == 0, run.ToString());
        var json = run.Json();
        Assert.Equal("vmj", json.GetProperty("name").GetString());
        Assert.Equal("Running", json.GetProperty("state").GetString());
        Assert.True(json.GetProperty("pid").GetInt32() > 0);
        Assert.Equal(Path.Combine(_root.Root, "vmj"), json.GetProperty("directory").GetString());
        Assert.StartsWith(Path.Combine(_root.Root, "vmj"), json.GetProperty("socketPath").GetString());
        Assert.StartsWith(Path.Combine(_root.Root, "vmj"), json.GetProperty("consolePath").GetString());
    }

    [Fact]
    public async Task Run_without_a_name_generates_one()
    {
        var run = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Matches("^kiln-[0-9a-f]{8}$", run.Stdout.Trim());
    }

    [Fact]
    public async Task Run_refuses_a_name_that_is_already_taken()
    {
        await _root.RunDetachedAsync("dup");

        var again = await _root.RunAsync("run", "--detach", "--name", "dup", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);

        Assert.Equal(1, again.ExitCode);
        Assert.Contains("already exists", again.Stderr);
        Assert.Equal("Running", (await _root.PsAsync("dup")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task Ps_shows_exited_when_the_vmm_was_killed_behind_kilns_back()
    {
        await _root.RunDetachedAsync("victim");
        var pid = (await _root.PsAsync("victim")).GetProperty("pid").GetInt32();

        Assert.Equal(0, NativeMethods.kill(pid, NativeMethods.SIGKILL));
        await WaitUntilGoneAsync(pid);

        var ps = await _root.PsAsync("victim");
        Assert.Equal("Exited", ps.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, ps.GetProperty("pid").ValueKind);
        var table = await _root.RunAsync("ps");
        Assert.Contains("Exited", table.Stdout);

        // Stopping it tidies what the dead VMM left: its socket, and the Exited record becomes Stopped.
        var socket = (await _root.RunAsync("inspect", "victim", "--json")).Json().GetProperty("paths").GetProperty("socket").GetString()!;
        Assert.True(File.Exists(socket), "a SIGKILLed firecracker leaves its socket behind");
        var stop = await _root.RunAsync("stop", "victim");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal("Stopped", (await _root.PsAsync("victim")).GetProperty("state").GetString());
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public async Task Ps_lists_the_readable_sandboxes_names_an_unreadable_one_and_exits_1()
    {
        await _root.RunDetachedAsync("good");
        Directory.CreateDirectory(Path.Combine(_root.Root, "broken"));
        await File.WriteAllTextAsync(Path.Combine(_root.Root, "broken", "state.json"), "{ half a record", TestContext.Current.CancellationToken);

        var json = await _root.RunAsync("ps", "--json");
        var table = await _root.RunAsync("ps");

        Assert.Equal(1, json.ExitCode);
        Assert.Equal(["good"], json.Json().EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        Assert.Contains("kiln: sandbox 'broken' cannot be read:", json.Stderr);
        Assert.Contains("is not valid", json.Stderr);
        Assert.Equal(1, table.ExitCode);
        Assert.Contains("good", table.Stdout);
        Assert.Contains("'broken'", table.Stderr);
    }

    [Fact]
    public async Task Inspect_json_has_config_paths_pool_slots_and_firecrackers_vm_config()
    {
        await _root.RunDetachedAsync("insp", "--vcpus", "2", "--kernel-args", "console=ttyS0 quiet");

        var inspect = await _root.RunAsync("inspect", "insp", "--json");

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var json = inspect.Json();
        Assert.Equal("insp", json.GetProperty("name").GetString());
        Assert.Equal("Running", json.GetProperty("state").GetString());
        var config = json.GetProperty("config");
        Assert.Equal(_root.Kernel, config.GetProperty("kernelPath").GetString());
        Assert.Equal(_root.Rootfs, config.GetProperty("rootfsPath").GetString());
        Assert.Equal(KilnSandboxRoot.Fake, config.GetProperty("firecrackerPath").GetString());
        Assert.Equal(2, config.GetProperty("vcpus").GetInt32());
        Assert.Contains("quiet", config.GetProperty("kernelArgs").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(Path.Combine(_root.Root, "insp"), json.GetProperty("paths").GetProperty("directory").GetString());
        var slots = json.GetProperty("poolSlots");
        Assert.Equal(config.GetProperty("blockPoolSize").GetInt32(), slots.GetArrayLength());
        Assert.All(slots.EnumerateArray(), s => Assert.Equal(JsonValueKind.Null, s.GetProperty("hostPath").ValueKind));
        var vmConfig = json.GetProperty("vmConfig");
        Assert.Equal(2, vmConfig.GetProperty("machine-config").GetProperty("vcpu_count").GetInt32());
        Assert.Equal(_root.Kernel, vmConfig.GetProperty("boot-source").GetProperty("kernel_image_path").GetString());
    }

    [Fact]
    public async Task Inspect_without_json_renders_the_sections()
    {
        await _root.RunDetachedAsync("insh");

        var inspect = await _root.RunAsync("inspect", "insh");

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Contains("Block pool", inspect.Stdout);
        Assert.Contains("/vm/config", inspect.Stdout);
        Assert.Contains(_root.Kernel, inspect.Stdout);
    }

    [Theory]
    [InlineData("bare", "", "/dev/vda", "WholeDisk", "no partition table")]
    [InlineData("mbr", "", "/dev/vda1", "MbrPartitionTable", "MBR partition table")]
    [InlineData("mbr", "root=/dev/vdb", "/dev/vdb", "Configured", "configured root=")]
    public async Task Inspect_shows_the_root_device_the_guest_boots_from_and_why(string image, string kernelArgs, string device, string reason, string why)
    {
        var rootfs = _root.CreateFile($"{image}.img", 1024 * 1024);
        if (image == "mbr")
        {
            await using var file = new FileStream(rootfs, FileMode.Open, FileAccess.Write);
            var sector = new byte[512];
            sector[0x1BE + 4] = 0x83; // a Linux partition...
            sector[0x1BE + 12] = 0x10; // ...16 sectors long
            sector[510] = 0x55;
            sector[511] = 0xAA;
            await file.WriteAsync(sector, TestContext.Current.CancellationToken);
        }
        var name = "root-" + image + (kernelArgs.Length > 0 ? "-c" : "");
        string[] extra = kernelArgs.Length > 0 ? ["--kernel-args", kernelArgs] : [];
        var run = await _root.RunAsync(["run", "--detach", "--name", name, "--kernel", _root.Kernel, "--rootfs", rootfs, .. extra]);
        Assert.True(run.ExitCode == 0, run.ToString());

        var json = (await _root.RunAsync("inspect", name, "--json")).Json();
        var human = await _root.RunAsync("inspect", name);

        var root = json.GetProperty("rootDevice");
        Assert.Equal((device, reason), (root.GetProperty("device").GetString(), root.GetProperty("reason").GetString()));
        Assert.Contains(why, root.GetProperty("explanation").GetString());
        var bootArgs = json.GetProperty("vmConfig").GetProperty("boot-source").GetProperty("boot_args").GetString()!;
        Assert.Contains($"root={device}", bootArgs.Split(' '));
        Assert.Matches($@"Root device\s+{device} \(.*{why}", human.Stdout);
    }

    [Fact]
    public async Task Inspect_piped_to_a_file_draws_its_section_rules_80_columns_wide()
    {
        await _root.RunDetachedAsync("inrule");

        var inspect = await _root.RunAsync("inspect", "inrule");

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var rules = inspect.Stdout.Split('\n').Where(line => line.StartsWith("── ", StringComparison.Ordinal)).ToArray();
        Assert.Equal(["Block pool", "Boot devices", "Network", "Firecracker /vm/config"], rules.Select(r => r.Trim('─', ' ')));
        Assert.All(rules, rule => Assert.Equal(80, rule.Length));
    }

    [Fact]
    public async Task Inspect_shows_the_boot_time_devices_of_run_in_order_even_after_a_stop()
    {
        var disk = _root.CreateFile("seed.img", 1024 * 1024);
        // The stand-in opens the TAP for real, in this host's namespace: a name of this test's own.
        var tap = "kt" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(5));
        await _root.RunDetachedAsync("devs", "--drive", disk + ":ro", "--net", tap + ",mac=02:00:00:00:00:01", "--vsock", "5");
        Assert.Equal(0, (await _root.RunAsync("stop", "devs")).ExitCode);

        var json = (await _root.RunAsync("inspect", "devs", "--json")).Json();
        var human = await _root.RunAsync("inspect", "devs");

        var devices = json.GetProperty("devices").EnumerateArray().ToArray();
        Assert.Equal(["block", "network", "vsock"], devices.Select(d => d.GetProperty("kind").GetString()));
        Assert.Equal((disk, true), (devices[0].GetProperty("hostPath").GetString(), devices[0].GetProperty("readOnly").GetBoolean()));
        Assert.Equal((tap, "02:00:00:00:00:01"), (devices[1].GetProperty("tapName").GetString(), devices[1].GetProperty("macAddress").GetString()));
        Assert.Equal(5u, devices[2].GetProperty("guestCid").GetUInt32());
        Assert.Equal(JsonValueKind.Null, devices[2].GetProperty("hostPath").ValueKind);
        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Contains("Boot devices", human.Stdout);
        Assert.Contains(tap, human.Stdout);
        Assert.Contains("cid 5", human.Stdout);
    }

    [Fact]
    public async Task Drive_add_hot_plugs_into_a_slot_and_drive_rm_frees_it()
    {
        await _root.RunDetachedAsync("hp");
        var disk = _root.CreateFile("data.img", 1024 * 1024);

        var add = await _root.RunAsync("drive", "add", "hp", disk, "--json");

        Assert.True(add.ExitCode == 0, add.ToString());
        var added = add.Json();
        var slot = added.GetProperty("slot").GetInt32();
        Assert.Equal(disk, added.GetProperty("hostPath").GetString());
        Assert.False(added.GetProperty("readOnly").GetBoolean());
        Assert.Matches("^drive_[0-9]+$", added.GetProperty("driveId").GetString());
        Assert.StartsWith("/dev/vd", added.GetProperty("guestDevice").GetString());
        var inspected = (await _root.RunAsync("inspect", "hp", "--json")).Json();
        Assert.Equal(disk, inspected.GetProperty("poolSlots")[slot].GetProperty("hostPath").GetString());

        var rm = await _root.RunAsync("drive", "rm", "hp", slot.ToString(), "--json");

        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Equal(slot, rm.Json().GetProperty("slot").GetInt32());
        inspected = (await _root.RunAsync("inspect", "hp", "--json")).Json();
        Assert.Equal(JsonValueKind.Null, inspected.GetProperty("poolSlots")[slot].GetProperty("hostPath").ValueKind);
    }

    [Theory]
    [InlineData("slot")]
    [InlineData("driveId")]
    [InlineData("guestDevice")]
    [InlineData("guestDeviceName")]
    public async Task Drive_rm_takes_the_slot_the_drive_id_or_the_guest_device_that_drive_add_printed(string form)
    {
        var name = "hpf-" + form.ToLowerInvariant()[..4];
        await _root.RunDetachedAsync(name);
        var disk = _root.CreateFile("f.img", 1024 * 1024);
        var added = (await _root.RunAsync("drive", "add", name, disk, "--json")).Json();
        var slot = added.GetProperty("slot").GetInt32();
        var reference = form == "guestDeviceName"
            ? Path.GetFileName(added.GetProperty("guestDevice").GetString())!
            : form == "slot" ? slot.ToString(System.Globalization.CultureInfo.InvariantCulture) : added.GetProperty(form).GetString()!;

        var rm = await _root.RunAsync("drive", "rm", name, reference, "--json");

        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Equal(slot, rm.Json().GetProperty("slot").GetInt32());
        var inspected = (await _root.RunAsync("inspect", name, "--json")).Json();
        Assert.Equal(JsonValueKind.Null, inspected.GetProperty("poolSlots")[slot].GetProperty("hostPath").ValueKind);
    }

    [Fact]
    public async Task Drive_rm_of_something_no_slot_is_called_exits_1_and_lists_the_names_it_takes()
    {
        await _root.RunDetachedAsync("hpn");

        var rm = await _root.RunAsync("drive", "rm", "hpn", "drive_99");

        Assert.Equal(1, rm.ExitCode);
        Assert.Contains("no pool slot, drive or guest device 'drive_99'", rm.Stderr);
        Assert.Contains("drive_0", rm.Stderr);
    }

    [Fact]
    public async Task Drive_adds_from_four_kiln_processes_at_once_take_four_different_slots()
    {
        await _root.RunDetachedAsync("hpc");
        var disks = Enumerable.Range(0, 4).Select(i => _root.CreateFile($"c{i}.img", 1024 * 1024)).ToArray();

        var children = disks.Select(disk => _root.Start("drive", "add", "hpc", disk, "--json")).ToList();
        var results = new List<KilnResult>();
        foreach (var child in children)
        {
            await using (child)
                results.Add(await child.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken));
        }

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.ToString()));
        Assert.Equal(4, results.Select(r => r.Json().GetProperty("slot").GetInt32()).Distinct().Count());
        var slots = (await _root.RunAsync("inspect", "hpc", "--json")).Json().GetProperty("poolSlots").EnumerateArray();
        Assert.Equal(disks.Order(), slots.Select(s => s.GetProperty("hostPath").GetString()).OfType<string>().Order());
    }

    [Fact]
    public async Task Drive_add_read_only_fails_with_the_drivers_reason_in_one_line()
    {
        await _root.RunDetachedAsync("hpro");
        var disk = _root.CreateFile("ro.img", 4096);

        var add = await _root.RunAsync("drive", "add", "hpro", disk, "--ro");

        Assert.Equal(1, add.ExitCode);
        Assert.Contains("not supported", add.Stderr);
        Assert.Single(add.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Drive_add_prints_the_slot_and_guest_device_for_a_person()
    {
        await _root.RunDetachedAsync("hph");
        var disk = _root.CreateFile("d.img", 4096);

        var add = await _root.RunAsync("drive", "add", "hph", disk);

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Matches(@"^slot \d+: /dev/vd[a-z]+ ", add.Stdout);
    }

    [Fact]
    public async Task Drive_add_of_a_missing_file_exits_2_and_drive_rm_of_an_empty_slot_exits_1()
    {
        await _root.RunDetachedAsync("hpx");

        var add = await _root.RunAsync("drive", "add", "hpx", Path.Combine(_root.Files, "nope.img"));
        var rm = await _root.RunAsync("drive", "rm", "hpx", "0");

        Assert.Equal(2, add.ExitCode);
        Assert.Equal(1, rm.ExitCode);
        Assert.Contains("slot 0", rm.Stderr);
    }

    [Fact]
    public async Task Threads_maps_each_vcpu_to_a_thread_of_the_vmm()
    {
        await _root.RunDetachedAsync("thr", "--vcpus", "2");
        var pid = (await _root.PsAsync("thr")).GetProperty("pid").GetInt32();

        var threads = await _root.RunAsync("threads", "thr", "--json");

        Assert.True(threads.ExitCode == 0, threads.ToString());
        var json = threads.Json();
        Assert.Equal(pid, json.GetProperty("pid").GetInt32());
        var vcpus = json.GetProperty("vcpus").EnumerateArray().ToList();
        Assert.Equal([0, 1], vcpus.Select(v => v.GetProperty("index").GetInt32()));
        Assert.All(vcpus, v => Assert.True(Directory.Exists($"/proc/{pid}/task/{v.GetProperty("threadId").GetInt32()}")));
        var table = await _root.RunAsync("threads", "thr");
        Assert.Contains("VCPU", table.Stdout);
    }

    [Fact]
    public async Task Rm_refuses_a_running_vm_and_rm_force_stops_and_removes_it()
    {
        await _root.RunDetachedAsync("rmme");
        var pid = (await _root.PsAsync("rmme")).GetProperty("pid").GetInt32();

        var refused = await _root.RunAsync("rm", "rmme");

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("stop it first", refused.Stderr);
        Assert.True(Directory.Exists(Path.Combine(_root.Root, "rmme")));

        var forced = await _root.RunAsync("rm", "rmme", "--force", "--json");

        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.True(forced.Json().GetProperty("removed").GetBoolean());
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "rmme")));
        await WaitUntilGoneAsync(pid);
        Assert.Equal(0, (await _root.RunAsync("ps", "--json")).Json().GetArrayLength());
    }

    [Fact]
    public async Task Stop_then_rm_leaves_nothing_behind_and_stop_twice_is_fine()
    {
        await _root.RunDetachedAsync("tidy");

        var stop = await _root.RunAsync("stop", "tidy", "--timeout", "5");
        var again = await _root.RunAsync("stop", "tidy", "--force");
        var inspect = await _root.RunAsync("inspect", "tidy", "--json");
        var rm = await _root.RunAsync("rm", "tidy");

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.True(rm.ExitCode == 0, rm.ToString());
        // --timeout and --force are that stop's grace period, not a new setting for the sandbox.
        Assert.Equal(15, inspect.Json().GetProperty("config").GetProperty("stopTimeoutSeconds").GetDouble());
        Assert.Equal("tidy\n", rm.Stdout);
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "tidy")));
    }

    [Fact]
    public async Task Stop_force_kills_a_vm_that_ignores_sigterm_at_once_and_keeps_its_stop_timeout()
    {
        // The VMM ignores SIGTERM and its recorded grace is an hour: only a SIGKILL sent at once lets stop return
        // within the command timeout.
        _root.Environment["FAKE_FC_IGNORE_SIGTERM"] = "1";
        await _root.RunDetachedAsync("stubborn", "--stop-timeout", "3600");
        var pid = (await _root.PsAsync("stubborn")).GetProperty("pid").GetInt32();

        var stop = await _root.RunAsync("stop", "stubborn", "--force", "--json");

        Assert.True(stop.ExitCode == 0, stop.ToString());
        await WaitUntilGoneAsync(pid);
        var inspect = (await _root.RunAsync("inspect", "stubborn", "--json")).Json();
        Assert.Equal("Stopped", inspect.GetProperty("state").GetString());
        Assert.Equal(3600, inspect.GetProperty("config").GetProperty("stopTimeoutSeconds").GetDouble());
    }

    [Fact]
    public async Task Logs_prints_the_console_file_and_logs_json_prints_one_object_per_line()
    {
        await _root.RunDetachedAsync("lg");
        var inspect = (await _root.RunAsync("inspect", "lg", "--json")).Json();
        var console = inspect.GetProperty("paths").GetProperty("console").GetString()!;
        await _root.RunAsync("stop", "lg");
        var content = await File.ReadAllTextAsync(console, TestContext.Current.CancellationToken);

        var logs = await _root.RunAsync("logs", "lg");
        var json = await _root.RunAsync("logs", "lg", "--json");

        Assert.True(logs.ExitCode == 0, logs.ToString());
        Assert.NotEmpty(content);
        // The child's output is collected line by line, which drops carriage returns.
        Assert.Equal(content.Replace("\r\n", "\n"), logs.Stdout);
        var lines = json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(content.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, lines.Length);
        Assert.All(lines, l => JsonDocument.Parse(l).RootElement.GetProperty("line").GetString());
    }

    [Fact]
    public async Task Attach_sends_input_to_the_guests_serial_console_shows_its_answer_and_detaches_on_ctrl_close_bracket()
    {
        await _root.RunDetachedAsync("at");
        await using var attach = _root.Start("attach", "at");

        // Attach shows output from the moment it follows the console: type until the guest's answer shows.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        for (var i = 0; !attach.Stdout.Contains("kiln-fake-guest: serial input: hello", StringComparison.Ordinal); i++)
        {
            Assert.True(DateTime.UtcNow < deadline, "the guest's answer never showed:\n" + attach.Stdout);
            await attach.Input.WriteAsync(Encoding.UTF8.GetBytes($"hello {i}\r"), TestContext.Current.CancellationToken);
            await attach.Input.FlushAsync(TestContext.Current.CancellationToken);
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        await attach.Input.WriteAsync(new byte[] { 0x1d }, TestContext.Current.CancellationToken);
        await attach.Input.FlushAsync(TestContext.Current.CancellationToken);
        var result = await attach.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("detach with Ctrl-]", result.Stderr);
        Assert.Equal("Running", (await _root.PsAsync("at")).GetProperty("state").GetString());
        await _root.RunAsync("stop", "at");
    }

    [Fact]
    public async Task Attach_refuses_a_stopped_sandbox()
    {
        await _root.RunDetachedAsync("as");
        await _root.RunAsync("stop", "as");

        var result = await _root.RunAsync("attach", "as");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no console to attach to", result.Stderr);
    }

    [Fact]
    public async Task Logs_vmm_prints_firecrackers_own_log_which_the_console_does_not_hold()
    {
        await _root.RunDetachedAsync("lv");
        var paths = (await _root.RunAsync("inspect", "lv", "--json")).Json().GetProperty("paths");
        var vmmLog = paths.GetProperty("vmmLog").GetString()!;
        await _root.RunAsync("stop", "lv");

        var logs = await _root.RunAsync("logs", "lv");
        var vmm = await _root.RunAsync("logs", "lv", "--vmm");

        Assert.Equal(Path.Combine(paths.GetProperty("directory").GetString()!, "firecracker.log"), vmmLog);
        Assert.True(vmm.ExitCode == 0, vmm.ToString());
        Assert.Equal(await File.ReadAllTextAsync(vmmLog, TestContext.Current.CancellationToken), vmm.Stdout);
        Assert.Contains("Running Firecracker", vmm.Stdout);
        Assert.Contains("\"/actions\"", vmm.Stdout);
        Assert.True(logs.ExitCode == 0, logs.ToString());
        Assert.DoesNotContain("Running Firecracker", logs.Stdout);
    }

    [Fact]
    public async Task Logs_follow_ends_when_the_vm_is_stopped_by_another_kiln()
    {
        await _root.RunDetachedAsync("lf");
        await using var follow = _root.Start("logs", "lf", "--follow");

        var stop = await _root.RunAsync("stop", "lf");
        var result = await follow.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Logs_follow_ends_with_0_on_sigint()
    {
        await _root.RunDetachedAsync("lfi");
        await using var follow = _root.Start("logs", "lfi", "--follow");
        await WaitForWatchAsync(follow.Pid);

        follow.Signal(NativeMethods.SIGINT);
        var result = await follow.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("Running", (await _root.PsAsync("lfi")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_foreground_run_stops_its_vm_cleanly_on_sigint_and_exits_0()
    {
        await using var run = _root.Start("run", "--name", "fg", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);
        var pid = await WaitForRunningAsync("fg");

        run.Signal(NativeMethods.SIGINT);
        var result = await run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, result.ToString());
        await WaitUntilGoneAsync(pid);
        Assert.Equal("Stopped", (await _root.PsAsync("fg")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_vmm_does_not_outlive_a_foreground_kiln_killed_by_sigkill()
    {
        await using var run = _root.Start("run", "--name", "orphan", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);
        var pid = await WaitForRunningAsync("orphan");

        // SIGKILL runs no exit handler in kiln: only the VMM's parent-death signal can end it now.
        run.Signal(NativeMethods.SIGKILL);
        await run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        await WaitUntilGoneAsync(pid);
        Assert.Equal("Exited", (await _root.PsAsync("orphan")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_foreground_run_with_rm_removes_its_sandbox_after_sigterm()
    {
        await using var run = _root.Start("run", "--rm", "--name", "fgrm", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);
        await WaitForRunningAsync("fgrm");

        run.Signal(NativeMethods.SIGTERM);
        var result = await run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "fgrm")));
    }

    [Fact]
    public async Task A_foreground_run_exits_0_when_another_kiln_removes_its_sandbox_and_recreates_nothing()
    {
        await using var run = _root.Start("run", "--name", "fgx", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);
        await WaitForRunningAsync("fgx");

        var rm = await _root.RunAsync("rm", "--force", "fgx");
        var result = await run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "fgx")));
    }

    [Fact]
    public async Task A_foreground_run_exits_when_its_vm_is_stopped_from_another_kiln()
    {
        await using var run = _root.Start("run", "--name", "fgs", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);
        await WaitForRunningAsync("fgs");

        var stop = await _root.RunAsync("stop", "fgs");
        var result = await run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Pause_resume_and_snapshot_report_the_state()
    {
        await _root.RunDetachedAsync("snap");

        var pause = await _root.RunAsync("pause", "snap", "--json");
        Assert.True(pause.ExitCode == 0, pause.ToString());
        Assert.Equal("Paused", pause.Json().GetProperty("state").GetString());
        Assert.Equal("Paused", (await _root.PsAsync("snap")).GetProperty("state").GetString());

        var resume = await _root.RunAsync("resume", "snap", "--json");
        Assert.True(resume.ExitCode == 0, resume.ToString());
        Assert.Equal("Running", resume.Json().GetProperty("state").GetString());

        var snapshot = await _root.RunAsync("snapshot", "snap", "--json");
        Assert.True(snapshot.ExitCode == 0, snapshot.ToString());
        var json = snapshot.Json();
        Assert.Equal("Running", json.GetProperty("state").GetString());
        Assert.True(File.Exists(json.GetProperty("statePath").GetString()));
        Assert.True(File.Exists(json.GetProperty("memoryPath").GetString()));
    }

    [Fact]
    public async Task A_failed_snapshot_of_a_running_vm_leaves_it_running()
    {
        _root.Environment["FAKE_FC_FAIL"] = "PUT /snapshot/create=400:No space left on device";
        await _root.RunDetachedAsync("snapfail");

        var snapshot = await _root.RunAsync("snapshot", "snapfail");

        Assert.Equal(1, snapshot.ExitCode);
        Assert.Contains("No space left on device", snapshot.Stderr);
        Assert.Equal("Running", (await _root.PsAsync("snapfail")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task Snapshot_of_a_stopped_vm_says_it_needs_a_running_or_paused_one()
    {
        await _root.RunDetachedAsync("snapstop");
        await _root.RunAsync("stop", "snapstop");

        var snapshot = await _root.RunAsync("snapshot", "snapstop");

        Assert.Equal(1, snapshot.ExitCode);
        Assert.Contains("it is Stopped, and a snapshot needs a Running or Paused VM", snapshot.Stderr);
    }

    [Fact]
    public async Task A_start_failure_names_the_step_and_firecrackers_fault_and_frees_the_name()
    {
        // A kernel that exists when kiln checks but not when Firecracker opens it: the fault comes from Firecracker.
        var vanishing = _root.CreateFile("vanishing", 4096);
        var broken = Path.Combine(_root.Files, "fc-wrapper");
        File.WriteAllText(broken, $"#!/bin/sh\nrm -f {vanishing}\nexec {KilnSandboxRoot.Fake} \"$@\"\n");
        File.SetUnixFileMode(broken, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var run = await _root.RunAsync("run", "--detach", "--name", "bad", "--kernel", vanishing, "--rootfs", _root.Rootfs, "--firecracker", broken);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("kernel", run.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "bad")));
    }

    private async Task<int> WaitForRunningAsync(string name)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var ps = (await _root.RunAsync("ps", "--json")).Json();
            var entry = ps.EnumerateArray().FirstOrDefault(s => s.GetProperty("name").GetString() == name);
            if (entry.ValueKind != JsonValueKind.Undefined && entry.GetProperty("state").GetString() == "Running")
                return entry.GetProperty("pid").GetInt32();
        }
        throw new TimeoutException($"{name} did not reach Running");
    }

    /// <summary>Waits until a follower has its inotify watch: it then holds an inotify fd.</summary>
    private static async Task WaitForWatchAsync(int pid)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                try
                {
                    if (new FileInfo(fd).LinkTarget?.Contains("inotify") == true)
                        return;
                }
                catch (IOException)
                {
                }
            }
            // A probe interval, not a guess: the loop ends as soon as the watch exists.
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
        throw new TimeoutException("the follower never started watching");
    }

    private static async Task WaitUntilGoneAsync(int pid)
    {
        Process process;
        try
        {
            process = Process.GetProcessById(pid);
        }
        catch (ArgumentException)
        {
            return;
        }
        using (process)
            await process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30));
    }
}
