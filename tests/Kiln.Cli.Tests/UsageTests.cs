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

    // kiln run with bad input: exit 2, a message naming what is wrong, and nothing created. The arguments are split
    // at '|'; {kernel}, {rootfs} and {files} stand for this test root's dummy kernel, rootfs and files directory.
    [Theory]
    [InlineData("--detach", "--kernel")]
    [InlineData("--detach|--kernel|{kernel}", "--rootfs, --initrd")]
    [InlineData("--kernel|{kernel}|--json", "--json needs --detach")]
    [InlineData("--detach|--kernel|{files}/no-such-vmlinux|--rootfs|{rootfs}", "{files}/no-such-vmlinux")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--drive|{files}/no-such-disk.img:ro", "{files}/no-such-disk.img")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--firecracker|/nonexistent/firecracker", "/nonexistent/firecracker")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--vcpus|0", "--vcpus must be between 1 and 32")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--vcpus|33", "--vcpus must be between 1 and 32")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--vcpus|-1", "--vcpus must be between 1 and 32")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--memory|0", "--memory must be between")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--memory|2000000", "--memory must be between")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--memory|lots", "lots")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--stop-timeout|-1", "--stop-timeout must be between 0 and 3600 seconds")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--stop-timeout|3601", "--stop-timeout must be between 0 and 3600 seconds")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--stop-timeout|NaN", "--stop-timeout must be between 0 and 3600 seconds")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--vsock|2", "--vsock")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tap0,mac=zz:00:00:00:00:00", "--net")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|a-tap-name-longer-than-fifteen", "--net")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tap0,speed=fast", "--net")]
    [InlineData("--kernel|{kernel}|--rootfs|{rootfs}|--net|--detach", "--net needs a value, but the next word is the option '--detach'")]
    [InlineData("--kernel|{kernel}|--rootfs|{rootfs}|--net|-d", "--net needs a value, but the next word is the option '-d'")]
    [InlineData("--detach|--kernel|--rootfs|{rootfs}", "--kernel needs a value, but the next word is the option '--rootfs'")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--name|--json", "--name needs a value")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--drive|--verbose", "--drive needs a value")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--kernel-args|--help", "--kernel-args needs a value")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--firecracker|--root|/tmp", "--firecracker needs a value")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tap:0", "is not a TAP device name: ':' is not allowed")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tap 0", "is not a TAP device name: white space")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tap	0", "is not a TAP device name: white space")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tap/0", "is not a TAP device name: '/' is not allowed")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tap%d", "is not a TAP device name: '%' is not allowed")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|..", "is not a TAP device name: '.' and '..'")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|,mac=02:00:00:00:00:01", "is not a TAP device name: it is empty")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--net|tapéééééééé", "is not a TAP device name: 19 bytes, at most 15")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--name|../escape", "invalid sandbox name")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--name|a/b", "invalid sandbox name")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--name|..", "invalid sandbox name")]
    [InlineData("--detach|--kernel|{kernel}|--rootfs|{rootfs}|--name|has space", "invalid sandbox name")]
    public async Task Run_with_bad_input_exits_2_before_anything_starts(string args, string message)
    {
        string Fill(string text) => text.Replace("{kernel}", _root.Kernel, StringComparison.Ordinal)
            .Replace("{rootfs}", _root.Rootfs, StringComparison.Ordinal).Replace("{files}", _root.Files, StringComparison.Ordinal);

        var result = await _root.RunAsync(["run", .. Fill(args).Split('|')]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(Fill(message), result.Stderr);
        AssertNothingCreated();
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

    [Fact]
    public async Task Drive_rm_with_a_negative_slot_exits_2()
    {
        var result = await _root.RunAsync("drive", "rm", "vm", "-1");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("expected a pool slot (0 or more), a drive id or a guest device, not '-1'", result.Stderr);
    }

    [Theory]
    [InlineData("stop|vm|--timeout|--force", "--timeout needs a value, but the next word is the option '--force'")]
    [InlineData("stop|vm|-t|--json", "--timeout needs a value")]
    [InlineData("version|--firecracker|--json", "--firecracker needs a value")]
    [InlineData("ps|--root|--json", "--root needs a value")]
    [InlineData("demo|--kernel|--rootfs|x", "--kernel needs a value")]
    public async Task An_option_given_another_option_as_its_value_exits_2(string args, string message)
    {
        var result = await _root.RunWithoutRootAsync(args.Split('|'));

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
