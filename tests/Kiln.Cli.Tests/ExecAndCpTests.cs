// kiln exec and kiln cp against the stand-in, whose guest runs the real kiln-agent (FAKE_FC_AGENT) behind its
// hybrid-vsock socket: the same path as a real microVM, without KVM.
using System.Security.Cryptography;

namespace Kiln.Cli.Tests;

public sealed class ExecAndCpTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ExecAndCpTests()
    {
        _root.Environment["FAKE_FC_AGENT"] = Path.Combine(AppContext.BaseDirectory, "kiln-agent");
        // exec's command follows `--`, where an appended --root would land: the root comes from the environment instead.
        _root.Environment["KILN_ROOT"] = _root.Root;
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private async Task RunWithVsockAsync(string name)
    {
        var run = await _root.RunAsync("run", "--detach", "--name", name, "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--vsock", "3");
        Assert.True(run.ExitCode == 0, run.ToString());
    }

    [Fact]
    public async Task Exec_streams_the_commands_output_and_exits_with_its_exit_code()
    {
        await RunWithVsockAsync("ex");

        var exec = await _root.RunWithoutRootAsync("exec", "ex", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3");

        Assert.Equal(3, exec.ExitCode);
        Assert.Equal("hi\n", exec.Stdout);
        Assert.Contains("oops", exec.Stderr);
    }

    [Fact]
    public async Task Exec_json_reports_the_output_and_the_exit()
    {
        await RunWithVsockAsync("exj");

        var exec = await _root.RunWithoutRootAsync("exec", "exj", "--json", "--env", "A=b c", "--", "sh", "-c", "printf %s \"$A\"");

        Assert.Equal(0, exec.ExitCode);
        Assert.Equal("b c", exec.Json().GetProperty("stdout").GetString());
        Assert.Equal(0, exec.Json().GetProperty("exitCode").GetInt32());
    }

    [Fact]
    public async Task Exec_of_a_missing_command_exits_127()
    {
        await RunWithVsockAsync("ex127");

        var exec = await _root.RunWithoutRootAsync("exec", "ex127", "--", "no-such-command-kiln");

        Assert.Equal(127, exec.ExitCode);
    }

    [Fact]
    public async Task Exec_on_a_sandbox_without_vsock_fails_saying_so()
    {
        var run = await _root.RunAsync("run", "--detach", "--name", "novs", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs);
        Assert.True(run.ExitCode == 0, run.ToString());

        var exec = await _root.RunWithoutRootAsync("exec", "novs", "--", "true");

        Assert.Equal(1, exec.ExitCode);
        Assert.Contains("vsock", exec.Stderr);
    }

    [Fact]
    public async Task Cp_copies_a_file_into_the_guest_and_back_unchanged()
    {
        await RunWithVsockAsync("cp1");
        var source = _root.CreateFile("payload.bin", 0);
        await File.WriteAllBytesAsync(source, RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 5), TestContext.Current.CancellationToken);
        var guestPath = Path.Combine(_root.Files, "in-guest.bin");
        var back = Path.Combine(_root.Files, "back.bin");

        var up = await _root.RunAsync("cp", source, $"cp1:{guestPath}");
        var down = await _root.RunAsync("cp", $"cp1:{guestPath}", back, "--json");

        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(new FileInfo(source).Length, down.Json().GetProperty("bytes").GetInt64());
        Assert.Equal(SHA256.HashData(await File.ReadAllBytesAsync(source, TestContext.Current.CancellationToken)),
            SHA256.HashData(await File.ReadAllBytesAsync(back, TestContext.Current.CancellationToken)));
    }

    [Fact]
    public async Task Cp_between_two_host_paths_is_bad_usage()
    {
        var cp = await _root.RunAsync("cp", "/etc/hostname", "/tmp/x");

        Assert.Equal(2, cp.ExitCode);
    }
}
