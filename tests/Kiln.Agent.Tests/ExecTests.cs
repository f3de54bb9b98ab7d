using System.Security.Cryptography;
using System.Text;
using Kiln.Agent.Tests.Support;

namespace Kiln.Agent.Tests;

public sealed class ExecTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task True_exits_zero_and_false_exits_one()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var t = await agent.Client.ExecAsync(["true"], Ct);
        var f = await agent.Client.ExecAsync(["false"], Ct);

        Assert.Equal((0, null, false), (t.ExitCode, t.Exit.Signal, t.Exit.TimedOut));
        Assert.Equal(1, f.ExitCode);
    }

    [Fact]
    public async Task A_shell_command_gives_its_output_and_exit_code()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var result = await agent.Client.ExecAsync(["sh", "-c", "echo hi; echo oops >&2; exit 3"], Ct);

        Assert.Equal("hi\n", result.Stdout);
        Assert.Equal("oops\n", result.Stderr);
        Assert.Equal(3, result.ExitCode);
    }

    [Fact]
    public async Task Long_output_arrives_whole_and_in_order()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        var expected = string.Concat(Enumerable.Range(1, 300_000).Select(i => i + "\n"));

        var result = await agent.Client.ExecAsync(["seq", "1", "300000"], Ct);

        Assert.Equal(expected.Length, result.StandardOutput.Length);
        Assert.Equal(SHA256.HashData(Encoding.ASCII.GetBytes(expected)), SHA256.HashData(result.StandardOutput));
    }

    [Fact]
    public async Task Stdout_and_stderr_stay_separate_and_each_in_order()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var result = await agent.Client.ExecAsync(["sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"], Ct);

        Assert.Equal(Enumerable.Range(0, 2000).Select(i => "out" + i), result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => "err" + i), result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Stdin_is_echoed_back_byte_for_byte()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        var input = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);

        var result = await agent.Client.ExecAsync(["cat"], new ExecOptions { StandardInput = input }, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(SHA256.HashData(input), SHA256.HashData(result.StandardOutput));
    }

    [Fact]
    public async Task Without_stdin_a_command_reads_end_of_file_at_once()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var result = await agent.Client.ExecAsync(["wc", "-c"], new ExecOptions { Timeout = TimeSpan.FromSeconds(20) }, Ct);

        Assert.Equal("0", result.Stdout.Trim());
        Assert.False(result.Exit.TimedOut);
    }

    [Fact]
    public async Task A_streaming_exec_takes_stdin_as_it_comes_and_streams_output_back()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        await using var process = await agent.Client.StartAsync(["cat"], new ExecOptions(), standardInput: true, Ct);
        using var reader = new StreamReader(process.StandardOutput);

        await process.StandardInput.WriteAsync("first\n"u8.ToArray(), Ct);
        var first = await reader.ReadLineAsync(Ct);
        await process.StandardInput.WriteAsync("second\n"u8.ToArray(), Ct);
        var second = await reader.ReadLineAsync(Ct);
        await process.StandardInput.DisposeAsync();
        var exit = await process.Exit.WaitAsync(Ct);

        Assert.Equal(("first", "second"), (first, second));
        Assert.Equal(0, exit.ExitCode);
    }

    [Fact]
    public async Task A_command_past_its_timeout_is_killed_and_reported_as_timed_out()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var result = await agent.Client.ExecAsync(["sleep", "60"], new ExecOptions { Timeout = TimeSpan.FromMilliseconds(200) }, Ct);

        Assert.True(result.Exit.TimedOut);
        Assert.Equal(9, result.Exit.Signal);
        Assert.Equal(137, result.ExitCode);
    }

    [Fact]
    public async Task Kill_ends_a_running_command_with_SIGKILL()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        await using var process = await agent.Client.StartAsync(["sleep", "60"], new ExecOptions(), standardInput: false, Ct);

        await process.KillAsync(Ct);
        var exit = await process.Exit.WaitAsync(Ct);

        Assert.Equal((9, false), (exit.Signal, exit.TimedOut));
    }

    [Fact]
    public async Task A_command_killed_by_a_signal_reports_the_signal_not_an_exit_code()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var killed = await agent.Client.ExecAsync(["sh", "-c", "kill -TERM $$"], Ct);
        var exited = await agent.Client.ExecAsync(["sh", "-c", "exit 143"], Ct);

        Assert.Equal((143, 15), (killed.ExitCode, killed.Exit.Signal));
        Assert.Equal((143, null), (exited.ExitCode, exited.Exit.Signal));
    }

    [Fact]
    public async Task A_signal_sent_to_a_running_command_reaches_it()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        await using var process = await agent.Client.StartAsync(["sh", "-c", "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done"], new ExecOptions(), false, Ct);
        using var reader = new StreamReader(process.StandardOutput);
        Assert.Equal("ready", await reader.ReadLineAsync(Ct));

        await process.SignalAsync(10, Ct);
        var line = await reader.ReadLineAsync(Ct);
        var exit = await process.Exit.WaitAsync(Ct);

        Assert.Equal("got-usr1", line);
        Assert.Equal(7, exit.ExitCode);
    }

    [Fact]
    public async Task Cancelling_an_exec_kills_the_command_in_the_guest()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        var marker = dir["started"];
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var exec = agent.Client.ExecAsync(["sh", "-c", $"echo $$ > {marker}.tmp && mv {marker}.tmp {marker}; exec sleep 60"], cts.Token);
        var pid = int.Parse(await Eventually.FileTextAsync(marker, TimeSpan.FromSeconds(20)), System.Globalization.CultureInfo.InvariantCulture);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => exec);
        await Eventually.TrueAsync(() => !Directory.Exists($"/proc/{pid}"), TimeSpan.FromSeconds(20), $"process {pid} still exists: {Stat(pid)} {agent.Output}");
    }

    private static string Stat(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return "gone";
        }
    }

    [Fact]
    public async Task Environment_working_directory_and_user_are_applied()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        var options = new ExecOptions
        {
            Environment = new Dictionary<string, string> { ["GREETING"] = "hello there" },
            WorkingDirectory = "/tmp",
            User = "65534:65534",
        };

        var result = await agent.Client.ExecAsync(["sh", "-c", "echo \"$GREETING\"; pwd; id -u; id -g"], options, Ct);

        Assert.Equal("hello there\n/tmp\n65534\n65534\n", result.Stdout);
    }

    [Fact]
    public async Task A_missing_command_is_reported_as_not_found()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var e = await Assert.ThrowsAsync<AgentOperationException>(() => agent.Client.ExecAsync(["no-such-command-kiln"], Ct));

        Assert.Equal("not-found", e.ErrorCode);
    }

    [Fact]
    public async Task An_unknown_user_is_an_invalid_request()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var e = await Assert.ThrowsAsync<AgentOperationException>(() => agent.Client.ExecAsync(["true"], new ExecOptions { User = "no-such-user-kiln" }, Ct));

        Assert.Equal("invalid-request", e.ErrorCode);
    }

    [Fact]
    public async Task Output_left_open_by_a_background_child_does_not_hold_the_exec_forever()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var result = await agent.Client.ExecAsync(["sh", "-c", "sleep 30 & echo done"], Ct);

        Assert.Equal(("done\n", 0), (result.Stdout, result.ExitCode));
    }

    [Fact]
    public async Task Concurrent_execs_each_get_their_own_output()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => agent.Client.ExecAsync(["sh", "-c", $"echo {i}; exit {i}"], Ct)));

        Assert.Equal(Enumerable.Range(0, 8).Select(i => ($"{i}\n", i)), results.Select(r => (r.Stdout, r.ExitCode)));
    }
}
