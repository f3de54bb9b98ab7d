// kiln run --template and kiln restore through separate kiln processes against fake-firecracker, whose guest runs the
// real kiln-agent (FAKE_FC_AGENT) and echoes on vsock port 5000: clones and restored VMs are sandboxes that ps,
// inspect, exec, vsock, stop and rm handle like any other, and a failed run leaves nothing behind.
using System.Text.Json.Nodes;

namespace Kiln.Cli.Tests;

public sealed class TemplateRunTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public TemplateRunTests()
    {
        _root.Environment["FAKE_FC_AGENT"] = Path.Combine(AppContext.BaseDirectory, "kiln-agent");
        // exec's command follows `--`, where an appended --root would land: the root comes from the environment instead.
        _root.Environment["KILN_ROOT"] = _root.Root;
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private async Task TemplateAsync(string template = "base")
    {
        await _root.RunDetachedAsync("src", "--vsock", "3");
        var create = await _root.RunAsync("template", "create", template, "--from", "src");
        Assert.True(create.ExitCode == 0, create.ToString());
    }

    private async Task<IReadOnlyList<string>> SandboxNamesAsync()
    {
        var ps = await _root.RunAsync("ps", "--json");
        Assert.True(ps.ExitCode == 0, ps.ToString());
        return [.. ps.Json().EnumerateArray().Select(s => s.GetProperty("name").GetString()!)];
    }

    private async Task<string> EchoAsync(string name, string text)
    {
        await using var child = _root.Start("vsock", name, "5000");
        await child.WriteStdinAndCloseAsync(text + "\n");
        var result = await child.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Stdout.TrimEnd('\n');
    }

    [Fact]
    public async Task Run_template_count_starts_that_many_clones_that_ps_exec_inspect_stop_and_rm_handle_as_any_sandbox()
    {
        await TemplateAsync();

        var run = await _root.RunAsync("run", "--template", "base", "--count", "3", "--name", "web", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var clones = run.Json().EnumerateArray().ToList();
        Assert.Equal(["web-1", "web-2", "web-3"], clones.Select(c => c.GetProperty("name").GetString()));
        Assert.All(clones, c => Assert.Equal("Running", c.GetProperty("state").GetString()));
        Assert.All(clones, c => Assert.Equal("base", c.GetProperty("template").GetString()));
        Assert.Equal(3, clones.Select(c => c.GetProperty("pid").GetInt32()).Distinct().Count());
        foreach (var name in new[] { "web-1", "web-2", "web-3" })
            Assert.Equal("Running", (await _root.PsAsync(name)).GetProperty("state").GetString());
        Assert.Equal("to web-2", await EchoAsync("web-2", "to web-2"));
        var exec = await _root.RunWithoutRootAsync("exec", "web-3", "--", "sh", "-c", "echo from the clone");
        Assert.True(exec.ExitCode == 0, exec.ToString());
        Assert.Equal("from the clone\n", exec.Stdout);
        var inspect = await _root.RunAsync("inspect", "web-1", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal("base", inspect.Json().GetProperty("config").GetProperty("restore").GetProperty("template").GetString());

        var stop = await _root.RunAsync("stop", "web-1");
        var rm = await _root.RunAsync("rm", "web-1");

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Equal(["src", "web-2", "web-3"], await SandboxNamesAsync());
        Assert.Equal("Running", (await _root.PsAsync("web-2")).GetProperty("state").GetString());
        Assert.Equal("still here", await EchoAsync("web-3", "still here"));
    }

    [Fact]
    public async Task Rm_refuses_the_source_of_a_template_until_the_template_is_removed_and_a_stopped_source_still_serves_clones()
    {
        await TemplateAsync();
        Assert.True((await _root.RunAsync("stop", "src")).ExitCode == 0);

        var refused = await _root.RunAsync("rm", "src");
        var clone = await _root.RunAsync("run", "--template", "base", "--name", "after-stop");

        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("kiln template rm base", refused.Stderr);
        Assert.True(clone.ExitCode == 0, clone.ToString());
        Assert.True((await _root.RunAsync("template", "rm", "base")).ExitCode == 0);
        var removed = await _root.RunAsync("rm", "src");
        Assert.True(removed.ExitCode == 0, removed.ToString());
        Assert.Equal(["after-stop"], await SandboxNamesAsync());
    }

    [Fact]
    public async Task Run_template_prints_one_name_per_clone_when_piped()
    {
        await TemplateAsync();

        var run = await _root.RunAsync("run", "--template", "base", "--name", "one");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("one\n", run.Stdout);
        Assert.Equal("Running", (await _root.PsAsync("one")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_clone_that_fails_at_the_load_fails_the_run_with_1_and_leaves_no_sandbox_or_process()
    {
        await TemplateAsync();
        var srcPid = (await _root.PsAsync("src")).GetProperty("pid").GetInt32();
        _root.Environment["FAKE_FC_EXIT_AT"] = "PUT /snapshot/load";

        var run = await _root.RunAsync("run", "--template", "base", "--count", "2", "--name", "bad");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("snapshot-load", run.Stderr);
        Assert.Equal(["src"], await SandboxNamesAsync());
        Assert.Equal([srcPid], KilnSandboxRoot.ProcessesMentioning(_root.Root).Where(IsFirecracker));
    }

    [Fact]
    public async Task A_run_whose_third_clone_cannot_be_made_stops_and_removes_the_two_already_running()
    {
        await TemplateAsync();
        var srcPid = (await _root.PsAsync("src")).GetProperty("pid").GetInt32();
        // A file where the third clone's directory would go: its sandbox cannot be created.
        await File.WriteAllTextAsync(Path.Combine(_root.Root, "half-3"), "in the way", TestContext.Current.CancellationToken);

        var run = await _root.RunAsync("run", "--template", "base", "--count", "3", "--name", "half");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal(["src"], await SandboxNamesAsync());
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "half-1")));
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "half-2")));
        Assert.Equal([srcPid], KilnSandboxRoot.ProcessesMentioning(_root.Root).Where(IsFirecracker));
    }

    [Fact]
    public async Task A_template_of_another_firecracker_release_is_refused_with_1_before_any_clone_exists()
    {
        await TemplateAsync();
        var manifestPath = Path.Combine(_root.Root, ".templates", "base", "template.json");
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(manifestPath, TestContext.Current.CancellationToken))!;
        manifest["firecracker_version"] = "1.15.0";
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString(), TestContext.Current.CancellationToken);

        var run = await _root.RunAsync("run", "--template", "base", "--count", "2");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("1.15.0", run.Stderr);
        Assert.Equal(["src"], await SandboxNamesAsync());
    }

    [Theory]
    [InlineData("run|--template|base|--kernel|{kernel}", "--kernel")]
    [InlineData("run|--template|base|--vcpus|2", "--vcpus")]
    [InlineData("run|--template|base|--count|0", "--count must be between 1")]
    [InlineData("run|--count|2|--kernel|{kernel}|--rootfs|{rootfs}", "--count needs --template")]
    [InlineData("run|--template|../x", "not a template name")]
    [InlineData("restore|r|--snapshot|{files}/none.state|--mem|{files}/none.mem", "none.state")]
    [InlineData("restore|r|--snapshot|{kernel}|--mem|{rootfs}|--network-override|eth0", "expected IFACE=TAP")]
    public async Task Misused_template_and_restore_options_exit_2_naming_the_problem(string args, string expected)
    {
        var run = await _root.RunAsync(args.Replace("{kernel}", _root.Kernel).Replace("{rootfs}", _root.Rootfs).Replace("{files}", _root.Files).Split('|'));

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(expected, run.Stderr);
        Assert.False(Directory.Exists(_root.Root) && Directory.EnumerateDirectories(_root.Root).Any(d => !Path.GetFileName(d).StartsWith('.')));
    }

    [Fact]
    public async Task Drive_add_hot_plugs_into_a_clone_through_its_copies_of_the_templates_placeholders_and_drive_rm_frees_the_slot()
    {
        await TemplateAsync();
        var run = await _root.RunAsync("run", "--template", "base", "--name", "hp");
        Assert.True(run.ExitCode == 0, run.ToString());
        var disk = _root.CreateFile("data.img", 1024 * 1024);

        var add = await _root.RunAsync("drive", "add", "hp", disk, "--json");
        var rm = await _root.RunAsync("drive", "rm", "hp", "0", "--json");

        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(0, add.Json().GetProperty("slot").GetInt32());
        Assert.Equal(disk, add.Json().GetProperty("hostPath").GetString());
        Assert.True(rm.ExitCode == 0, rm.ToString());
        var inspected = (await _root.RunAsync("inspect", "hp", "--json")).Json();
        Assert.Equal(System.Text.Json.JsonValueKind.Null, inspected.GetProperty("poolSlots")[0].GetProperty("hostPath").ValueKind);
    }

    [Fact]
    public async Task Network_for_a_template_whose_machine_has_no_interface_is_a_usage_error()
    {
        await TemplateAsync();

        var run = await _root.RunAsync("run", "--template", "base", "--network", "isolated");

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("no network interface", run.Stderr);
        Assert.Equal(["src"], await SandboxNamesAsync());
    }

    [Fact]
    public async Task Run_template_of_a_template_that_does_not_exist_fails_with_1()
    {
        var run = await _root.RunAsync("run", "--template", "nothing");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("No template 'nothing'", run.Stderr);
    }

    [Fact]
    public async Task Restore_starts_a_sandbox_from_kiln_snapshot_files_with_its_own_vsock_socket_and_records_from_what()
    {
        await _root.RunDetachedAsync("src", "--vsock", "3");
        var snapshot = await _root.RunAsync("snapshot", "src", "--json");
        Assert.True(snapshot.ExitCode == 0, snapshot.ToString());
        var state = snapshot.Json().GetProperty("statePath").GetString()!;
        var memory = snapshot.Json().GetProperty("memoryPath").GetString()!;

        var restore = await _root.RunAsync("restore", "copy", "--snapshot", state, "--mem", memory, "--track-dirty-pages", "--json");

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal("Running", restore.Json().GetProperty("state").GetString());
        Assert.Equal("Running", (await _root.PsAsync("copy")).GetProperty("state").GetString());
        Assert.Equal("Running", (await _root.PsAsync("src")).GetProperty("state").GetString());
        Assert.Equal("to the copy", await EchoAsync("copy", "to the copy"));
        Assert.Equal("to the source", await EchoAsync("src", "to the source"));
        var inspect = (await _root.RunAsync("inspect", "copy", "--json")).Json();
        var recorded = inspect.GetProperty("config").GetProperty("restore");
        Assert.Equal(state, recorded.GetProperty("snapshotStatePath").GetString());
        Assert.True(recorded.GetProperty("trackDirtyPages").GetBoolean());
        Assert.Equal(Path.Combine(_root.Root, "copy", "vsock.sock"),
            inspect.GetProperty("devices").EnumerateArray().Single(d => d.GetProperty("kind").GetString() == "vsock").GetProperty("udsPath").GetString());
    }

    [Fact]
    public async Task Snapshot_diff_of_a_sandbox_restored_with_dirty_page_tracking_writes_the_diff_beside_the_full_snapshot()
    {
        await _root.RunDetachedAsync("src", "--vsock", "3");
        var full = (await _root.RunAsync("snapshot", "src", "--json")).Json();
        var restore = await _root.RunAsync("restore", "tracked", "--snapshot", full.GetProperty("statePath").GetString()!,
            "--mem", full.GetProperty("memoryPath").GetString()!, "--track-dirty-pages");
        Assert.True(restore.ExitCode == 0, restore.ToString());

        var diff = await _root.RunAsync("snapshot", "tracked", "--diff", "--json");

        Assert.True(diff.ExitCode == 0, diff.ToString());
        Assert.Equal(Path.Combine(_root.Root, "tracked", "snapshot.diff.state"), diff.Json().GetProperty("statePath").GetString());
        Assert.True(File.Exists(diff.Json().GetProperty("memoryPath").GetString()));
        Assert.Equal("Running", diff.Json().GetProperty("state").GetString());
    }

    [Fact]
    public async Task Restore_paused_leaves_the_sandbox_Paused_until_kiln_resume()
    {
        await _root.RunDetachedAsync("src", "--vsock", "3");
        var snapshot = (await _root.RunAsync("snapshot", "src", "--json")).Json();

        var restore = await _root.RunAsync("restore", "--name", "held", "--snapshot", snapshot.GetProperty("statePath").GetString()!,
            "--mem", snapshot.GetProperty("memoryPath").GetString()!, "--paused");

        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal("held\n", restore.Stdout);
        Assert.Equal("Paused", (await _root.PsAsync("held")).GetProperty("state").GetString());
        Assert.True((await _root.RunAsync("resume", "held")).ExitCode == 0);
        Assert.Equal("Running", (await _root.PsAsync("held")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_restore_that_firecracker_refuses_fails_with_1_and_its_fault_and_leaves_no_sandbox()
    {
        await _root.RunDetachedAsync("src", "--vsock", "3");
        var snapshot = (await _root.RunAsync("snapshot", "src", "--json")).Json();
        var memory = snapshot.GetProperty("memoryPath").GetString()!;
        var truncated = Path.Combine(_root.Files, "short.mem");
        await File.WriteAllBytesAsync(truncated, (await File.ReadAllBytesAsync(memory, TestContext.Current.CancellationToken))[..16], TestContext.Current.CancellationToken);

        var restore = await _root.RunAsync("restore", "bad", "--snapshot", snapshot.GetProperty("statePath").GetString()!, "--mem", truncated);

        Assert.True(restore.ExitCode == 1, restore.ToString());
        Assert.Contains("snapshot-load", restore.Stderr);
        Assert.Equal(["src"], await SandboxNamesAsync());
    }

    private static bool IsFirecracker(int pid)
    {
        try
        {
            // A detached VMM's console keeper names the VMM's executable on its command line: not a VMM itself.
            var commandLine = File.ReadAllText($"/proc/{pid}/cmdline");
            return !commandLine.Contains("console-keeper", StringComparison.Ordinal)
                && (Path.GetFileName(File.ReadAllText($"/proc/{pid}/comm").Trim()).StartsWith("fake-firecracke", StringComparison.Ordinal)
                    || commandLine.Contains("fake-firecracker", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }
}
