// Bad input: refused with exit 2 and one clear line before anything is created.
namespace Kiln.Cli.Tests;

public sealed class UsageTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private void AssertNothingCreated() =>
        Assert.False(Directory.Exists(_root.Root) && Directory.EnumerateFileSystemEntries(_root.Root).Any(),
            "bad input must be refused before anything is created");

    [Fact]
    public async Task An_unknown_command_exits_2_with_a_message()
    {
        var result = await _root.RunAsync("frobnicate");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("frobnicate", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    public async Task No_command_at_all_exits_2()
    {
        var result = await _root.RunWithoutRootAsync();

        Assert.Equal(2, result.ExitCode);
    }

    [Fact]
    public async Task Help_exits_0_and_lists_every_command()
    {
        var result = await _root.RunAsync("--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var command in new[] { "run", "ps", "inspect", "stop", "rm", "drive", "logs", "threads", "version", "demo", "pause", "resume", "snapshot" })
            Assert.Contains($"  {command}", result.Stdout);
        Assert.Contains("kiln [command] [options]", result.Stdout);
    }

    [Fact]
    public async Task Run_without_a_kernel_exits_2()
    {
        var result = await _root.RunAsync("run", "--detach");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--kernel", result.Stderr);
        AssertNothingCreated();
    }

    [Theory]
    [InlineData("--vcpus", "0", "--vcpus must be between 1 and 32")]
    [InlineData("--vcpus", "33", "--vcpus must be between 1 and 32")]
    [InlineData("--vcpus", "-1", "--vcpus must be between 1 and 32")]
    [InlineData("--memory", "0", "--memory must be between")]
    [InlineData("--memory", "2000000", "--memory must be between")]
    [InlineData("--stop-timeout", "-1", "--stop-timeout must be between 0 and 3600 seconds")]
    [InlineData("--stop-timeout", "3601", "--stop-timeout must be between 0 and 3600 seconds")]
    [InlineData("--stop-timeout", "NaN", "--stop-timeout must be between 0 and 3600 seconds")]
    public async Task Run_with_a_value_out_of_range_exits_2_before_anything_starts(string option, string value, string message)
    {
        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, option, value);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr);
        AssertNothingCreated();
    }

    [Fact]
    public async Task Run_with_a_non_numeric_memory_exits_2()
    {
        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--memory", "lots");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("lots", result.Stderr);
    }

    [Fact]
    public async Task Run_with_a_missing_kernel_file_exits_2_naming_the_path()
    {
        var missing = Path.Combine(_root.Files, "no-such-vmlinux");

        var result = await _root.RunAsync("run", "--detach", "--kernel", missing, "--rootfs", _root.Rootfs);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(missing, result.Stderr);
        Assert.Contains("--kernel", result.Stderr);
        AssertNothingCreated();
    }

    [Fact]
    public async Task Run_with_a_drive_that_does_not_exist_exits_2()
    {
        var missing = Path.Combine(_root.Files, "no-such-disk.img");

        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--drive", missing + ":ro");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(missing, result.Stderr);
        AssertNothingCreated();
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData("has space")]
    public async Task Run_with_a_name_that_is_not_a_safe_path_segment_exits_2(string name)
    {
        var result = await _root.RunAsync("run", "--detach", "--name", name, "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("invalid sandbox name", result.Stderr);
        AssertNothingCreated();
    }

    [Theory]
    [InlineData("tap0,mac=zz:00:00:00:00:00")]
    [InlineData("a-tap-name-longer-than-fifteen")]
    [InlineData("tap0,speed=fast")]
    public async Task Run_with_a_malformed_net_spec_exits_2(string net)
    {
        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--net", net);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--net", result.Stderr);
    }

    [Fact]
    public async Task Run_with_a_reserved_vsock_cid_exits_2()
    {
        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--vsock", "2");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--vsock", result.Stderr);
    }

    [Fact]
    public async Task Run_with_neither_rootfs_nor_initrd_exits_2()
    {
        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--rootfs, --initrd", result.Stderr);
        AssertNothingCreated();
    }

    [Fact]
    public async Task Run_in_the_foreground_with_json_exits_2()
    {
        var result = await _root.RunAsync("run", "--kernel", _root.Kernel, "--json");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--json needs --detach", result.Stderr);
        AssertNothingCreated();
    }

    [Fact]
    public async Task Run_with_a_firecracker_path_that_does_not_exist_exits_2()
    {
        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--firecracker", "/nonexistent/firecracker");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("/nonexistent/firecracker", result.Stderr);
    }

    [Fact]
    public async Task Run_with_a_firecracker_that_is_not_executable_exits_2_before_anything_starts()
    {
        var notExecutable = _root.CreateFile("firecracker", 16);
        File.SetUnixFileMode(notExecutable, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var result = await _root.RunAsync("run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--firecracker", notExecutable);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"firecracker binary is not executable: {notExecutable}", result.Stderr);
        AssertNothingCreated();
    }

    [Fact]
    public async Task Stop_with_both_force_and_timeout_exits_2()
    {
        var result = await _root.RunAsync("stop", "whatever", "--force", "--timeout", "3");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--force", result.Stderr);
    }

    [Theory]
    [InlineData("first", "first")]
    [InlineData("-1", "slot must be 0 or more, not -1")]
    public async Task Drive_rm_with_a_slot_that_is_not_a_pool_index_exits_2(string slot, string message)
    {
        var result = await _root.RunAsync("drive", "rm", "vm", slot);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr);
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("stop")]
    [InlineData("rm")]
    [InlineData("logs")]
    [InlineData("threads")]
    [InlineData("pause")]
    [InlineData("resume")]
    public async Task A_command_naming_an_unknown_sandbox_exits_1_with_one_line(string command)
    {
        Directory.CreateDirectory(_root.Root);

        var result = await _root.RunAsync(command, "ghost");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("ghost", result.Stderr);
        Assert.Single(result.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Ps_on_an_empty_root_prints_an_empty_json_array()
    {
        var result = await _root.RunAsync("ps", "--json");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(System.Text.Json.JsonValueKind.Array, result.Json().ValueKind);
        Assert.Equal(0, result.Json().GetArrayLength());
    }

    [Fact]
    public async Task Ps_on_an_empty_root_prints_the_table_header()
    {
        var result = await _root.RunAsync("ps");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("NAME", result.Stdout);
        Assert.Contains("UPTIME", result.Stdout);
        Assert.DoesNotContain("\u001b[", result.Stdout);
    }

    [Fact]
    public async Task The_root_comes_from_KILN_ROOT_when_no_option_is_given()
    {
        _root.Environment["KILN_ROOT"] = _root.Root;
        var result = await _root.RunWithoutRootAsync("drive", "add", "ghost", _root.Rootfs, "--json");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(_root.Root, result.Stderr);
    }
}
