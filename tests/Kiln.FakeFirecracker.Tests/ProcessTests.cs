using System.Text.RegularExpressions;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>What a parent process sees: output, exit codes, signals, threads.</summary>
public sealed partial class ProcessTests
{
    private static readonly TimeSpan Exit = TimeSpan.FromSeconds(20);

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[([^\]]+)\] (.*)$", RegexOptions.Multiline)]
    private static partial Regex LogLine();

    private static async Task<(int? Code, string Output)> RunToEnd(string target, params string[] args)
    {
        await using var p = FakeProcess.Start(args, binary: FirecrackerTarget.Require(target).BinaryPath);
        var code = await p.WaitExitAsync(Exit, Fc.Ct);
        return (code, p.Output);
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task Version_prints_the_version_and_exits_0(string target)
    {
        var (code, output) = await RunToEnd(target, "--version");

        Assert.Equal(0, code);
        Assert.StartsWith("Firecracker v1.16.1\n\n", output);
        Assert.Matches(@"\[anonymous-instance:main\] Firecracker exiting successfully\. exit_code=0\n$", output);
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task Help_prints_Firecrackers_help_text_verbatim(string target)
    {
        var sample = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "assets", "samples", "help.txt"), Fc.Ct);
        var expected = sample[..sample.IndexOf("\n20", StringComparison.Ordinal)] + "\n";

        var (code, output) = await RunToEnd(target, "--help");

        Assert.Equal(0, code);
        Assert.StartsWith(expected, output);
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task Snapshot_version_prints_the_data_format_version(string target)
    {
        var (code, output) = await RunToEnd(target, "--snapshot-version");

        Assert.Equal(0, code);
        Assert.StartsWith("v10.0.0\n", output);
    }

    public static TheoryData<string[], string, string, string> BadCommandLines() => FirecrackerTarget.Each(new TheoryData<string[], string, string>
    {
        { ["--no-such-flag"], "Found argument 'no-such-flag' which wasn't expected, or isn't valid in this context.", "UnexpectedArgument(\"no-such-flag\")" },
        { ["--id"], "The argument 'id' requires a value, but none was supplied.", "MissingValue(\"id\")" },
        { ["--id", "a", "--id", "b"], "The argument 'id' was provided more than once.", "DuplicateArgument(\"id\")" },
        { ["--no-api"], "Argument 'config-file' required, but not found.", "MissingArgument(\"config-file\")" },
    });

    [Theory]
    [MemberData(nameof(BadCommandLines))]
    public async Task A_bad_command_line_exits_153_with_an_argument_parsing_error(string[] args, string message, string debug, string target)
    {
        var (code, output) = await RunToEnd(target, args);

        Assert.Equal(153, code);
        Assert.Contains($"[anonymous-instance:main] Arguments parsing error: {message} \\n\\nFor more information try --help.\n", output);
        Assert.Contains($"Error: ParseArguments({debug})", output);
        Assert.Contains("Firecracker exiting with error. exit_code=153", output);
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task Describing_a_missing_snapshot_ends_the_process_with_1_and_main_rs_error_texts(string target)
    {
        using var dir = new TempDir();

        var (code, output) = await RunToEnd(target, "--describe-snapshot", dir["missing"]);

        Assert.Equal(1, code);
        Assert.Contains("[anonymous-instance:main] When printing Snapshot Data format: Unable to open snapshot state file: No such file or directory (os error 2)\n", output);
        Assert.Contains("Error: PrintSnapshotDataFormat(OpenSnapshot(Os { code: 2, kind: NotFound, message: \"No such file or directory\" }))", output);
        Assert.Contains("Firecracker exiting with error. exit_code=1", output);
    }

    // Start-up failures main.rs reports: its message, the error's Debug form on stderr, the exit line; the logger's
    // come before "Running Firecracker", the metrics' after it. "{dir}" stands for the test's own directory.
    public static TheoryData<string, int, string, string, bool, string> BadLoggerOrMetricsFlags() => FirecrackerTarget.Each(new TheoryData<string, int, string, string, bool>
    {
        { "--level|Loud", 152,
            "Invalid value for logger level: Failed to parse string to level filter: Loud.Possible values: [Error, Warning, Info, Debug]",
            "Error: InvalidLogLevel(LevelFilterFromStrError(\"Loud\"))", true },
        { "--log-path|{dir}/missing/fc.log", 1,
            "Could not initialize logger: Failed to open target file: No such file or directory (os error 2)",
            "Error: LoggerInitialization(LoggerUpdateError(Os { code: 2, kind: NotFound, message: \"No such file or directory\" }))", true },
        { "--metrics-path|{dir}/missing/fc.metrics", 1,
            "Could not initialize metrics: Cannot initialize the metrics system due to bad user input: No such file or directory (os error 2)",
            "Error: MetricsInitialization(InitializationFailure(\"No such file or directory (os error 2)\"))", false },
    });

    [Theory]
    [MemberData(nameof(BadLoggerOrMetricsFlags))]
    public async Task A_bad_logger_or_metrics_flag_ends_the_process_with_main_rs_texts_and_exit_code(string flag, int exitCode, string message, string debugForm, bool beforeRunning, string target)
    {
        using var dir = new TempDir();
        var extra = flag.Replace("{dir}", dir.Path, StringComparison.Ordinal).Split('|');

        var (code, output) = await RunToEnd(target, ["--api-sock", dir["api.sock"], "--id", "flag", .. extra]);

        Assert.Equal(exitCode, code);
        Assert.Contains($"[flag:main] {message}\n", output);
        Assert.Contains(debugForm, output);
        Assert.Contains($"Firecracker exiting with error. exit_code={exitCode}", output);
        Assert.Equal(!beforeRunning, output.Contains("Running Firecracker", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task An_instance_id_with_a_space_panics_and_dies_by_SIGABRT(string target)
    {
        var (code, output) = await RunToEnd(target, "--id", "bad id with spaces");

        Assert.Equal(-NativeMethods.SIGABRT, code);
        Assert.Contains("[anonymous-instance:main] Firecracker panicked at src/firecracker/src/main.rs:309:48:\nInvalid instance ID: InvalidChar(' ', 3)", output);
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task A_missing_config_file_panics_after_the_first_log_line_and_dies_by_SIGABRT(string target)
    {
        using var dir = new TempDir();

        var (code, output) = await RunToEnd(target, "--api-sock", dir["api.sock"], "--id", "cfg", "--config-file", dir["missing.json"]);

        Assert.Equal(-NativeMethods.SIGABRT, code);
        Assert.Contains("[cfg:main] Running Firecracker v1.16.1", output);
        Assert.Contains("Unable to open or read from the configuration file: Os { code: 2, kind: NotFound, message: \"No such file or directory\" }", output);
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task An_API_socket_path_that_exists_ends_the_process_with_exit_code_1(string target)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["api.sock"], "occupied", Fc.Ct);

        var (code, output) = await RunToEnd(target, "--api-sock", dir["api.sock"], "--id", "taken");

        Assert.Equal(1, code);
        Assert.Contains($"[taken:main] RunWithApiError error: Failed to open the API socket at: {dir["api.sock"]}. Check that it is not already used.", output);
        Assert.Contains($"Error: RunWithApi(FailedToBindSocket(\"{dir["api.sock"]}\"))", output);
        Assert.Contains("Firecracker exiting with error. exit_code=1", output);
    }

    [Theory]
    [MemberData(nameof(FirecrackerTarget.Names), MemberType = typeof(FirecrackerTarget))]
    public async Task SIGTERM_kills_the_process_by_signal_15_and_leaves_the_socket_behind(string target)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, target: FirecrackerTarget.Require(target));

        fc.Process.Signal(NativeMethods.SIGTERM);

        Assert.Equal(-NativeMethods.SIGTERM, await fc.Process.WaitExitAsync(Exit, Fc.Ct));
        Assert.True(File.Exists(dir["api.sock"]));
    }

    [Fact]
    public async Task Stdout_carries_Firecrackers_startup_lines_and_one_pair_of_lines_per_request()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "sample-1"]);
        await fc.Put("/machine-config", """{"vcpu_count": 0, "mem_size_mib": 128}""");
        await fc.Get("/no-such-path");
        Assert.True(await fc.Process.WaitForOutputAsync("InvalidPathMethod", Exit, Fc.Ct));

        var lines = LogLine().Matches(fc.Process.Output).Select(m => $"[{m.Groups[1].Value}] {m.Groups[2].Value}").ToList();

        Assert.Equal(
        [
            "[sample-1:main] Running Firecracker v1.16.1",
            $"[sample-1:main] Listening on API socket (\"{dir["api.sock"]}\").",
            "[sample-1:fc_api] API server started.",
            "[sample-1:fc_api] The API server received a Get request on \"/\".",
            "[sample-1:fc_api] The request was executed successfully. Status code: 200 OK.",
            "[sample-1:fc_api] The API server received a Put request on \"/machine-config\" with body \"{\\\"vcpu_count\\\": 0, \\\"mem_size_mib\\\": 128}\".",
            "[sample-1:fc_api] Received Error. Status code: 400 Bad Request. Message: Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.",
            "[sample-1:fc_api] The API server received a Get request on \"/no-such-path\".",
            "[sample-1:fc_api] InvalidPathMethod(\"no-such-path\", Get)",
        ], lines);
    }

    [Fact]
    public async Task Threads_are_firecracker_and_fc_api_then_one_fc_vcpu_per_vcpu()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        var before = FakeProcess.FirecrackerThreads(fc.Process.Threads());

        await fc.BootAsync(vcpus: 4);
        var after = FakeProcess.FirecrackerThreads(fc.Process.Threads());

        Assert.Equal(["fc_api", "firecracker"], before);
        Assert.Equal(["fc_api", "fc_vcpu 0", "fc_vcpu 1", "fc_vcpu 2", "fc_vcpu 3", "firecracker"], after);
    }

    [Fact]
    public async Task Ctrl_Alt_Del_with_reboot_k_ends_the_process_with_0_and_Firecrackers_last_lines()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "rb"], new Dictionary<string, string> { ["FAKE_FC_REBOOT_DELAY_MS"] = "50" });
        await fc.BootAsync();

        await fc.Ok("PUT", "/actions", """{"action_type": "SendCtrlAltDel"}""");

        Assert.Equal(0, await fc.Process.WaitExitAsync(Exit, Fc.Ct));
        Assert.Matches(@"reboot: Restarting system\r\n.*\n.*\[rb:main\] Vmm is stopping\.\n.*\[rb:main\] Killing vCPU threads\n.*\[rb:main\] Firecracker exiting successfully\. exit_code=0\n$", fc.Process.Output);
    }

    [Fact]
    public async Task Ctrl_Alt_Del_while_paused_is_answered_at_once_and_acted_on_after_resume()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "rb"], new Dictionary<string, string> { ["FAKE_FC_REBOOT_DELAY_MS"] = "50" });
        await fc.BootAsync();
        await fc.Ok("PATCH", "/vm", """{"state": "Paused"}""");

        await fc.Ok("PUT", "/actions", """{"action_type": "SendCtrlAltDel"}""");
        // Paused: the guest cannot run its init, so the process must still be there well past the reboot delay.
        Assert.Null(await fc.Process.WaitExitAsync(TimeSpan.FromMilliseconds(500), Fc.Ct));
        await fc.Ok("PATCH", "/vm", """{"state": "Resumed"}""");

        Assert.Equal(0, await fc.Process.WaitExitAsync(Exit, Fc.Ct));
    }

    [Fact]
    public async Task Without_reboot_k_Ctrl_Alt_Del_does_not_end_the_process()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, ["--id", "rb"], new Dictionary<string, string> { ["FAKE_FC_REBOOT_DELAY_MS"] = "10" });
        await fc.BootAsync(bootArgs: "console=ttyS0 panic=1");

        await fc.Ok("PUT", "/actions", """{"action_type": "SendCtrlAltDel"}""");

        Assert.True(await fc.Process.WaitForOutputAsync("reboot: Restarting system", Exit, Fc.Ct));
        Assert.Equal("Running", await fc.StateAsync());
    }
}
