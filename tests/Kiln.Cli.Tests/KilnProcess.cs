// Runs the real `kiln` executable from the test output directory as a child process, each test against its own
// state root under /tmp (short: the API socket path must stay under 108 bytes).
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Kiln.Cli.Tests;

public sealed record KilnResult(int ExitCode, string Stdout, string Stderr)
{
    public JsonElement Json()
    {
        using var document = JsonDocument.Parse(Stdout);
        return document.RootElement.Clone();
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>A running `kiln` child whose output is collected as it comes.</summary>
public sealed class KilnChild : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal KilnChild(ProcessStartInfo start)
    {
        _process = new Process { StartInfo = start };
        // Readers are attached before the process starts so no output is lost.
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data, _stdoutClosed);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data, _stderrClosed);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Waits until stdout matches <paramref name="pattern"/> (from character <paramref name="from"/> on);
    /// returns stdout's length then. Fails with what kiln printed when the deadline passes or kiln ends first.</summary>
    public async Task<int> WaitForOutputAsync(System.Text.RegularExpressions.Regex pattern, TimeSpan within, int from = 0)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var stdout = Stdout;
            if (stdout.Length > from && pattern.IsMatch(stdout[from..]))
                return stdout.Length;
            if (HasExited || DateTime.UtcNow > deadline)
            {
                string stderr;
                lock (_stderr)
                    stderr = _stderr.ToString();
                Assert.Fail($"'{pattern}' did not appear in kiln's output within {within}{(HasExited ? " (kiln ended)" : "")} (a slow guest: raise " +
                    $"KILN_TEST_BOOT_TIMEOUT; another ready line: KILN_TEST_READY_PATTERN).\n--- stdout\n{Tail(stdout)}\n--- stderr\n{Tail(stderr)}");
            }

            // kiln appends as the guest prints: look again shortly, bounded by the deadline above.
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    private static string Tail(string s) => s.Length <= 4000 ? s : s[^4000..];

    /// <summary>The child's stdin.</summary>
    public Stream Input => _process.StandardInput.BaseStream;

    public string Stdout
    {
        get
        {
            lock (_stdout)
                return _stdout.ToString();
        }
    }

    private static void Append(StringBuilder builder, string? line, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }
        lock (builder)
            builder.Append(line).Append('\n');
    }

    /// <summary>Writes <paramref name="text"/> to the child's stdin and closes it (end of input).</summary>
    public async Task WriteStdinAndCloseAsync(string text)
    {
        await _process.StandardInput.WriteAsync(text);
        _process.StandardInput.Close();
    }

    public void Signal(int signal)
    {
        if (NativeMethods.kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public async Task<KilnResult> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
            await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kiln did not exit within {timeout}.\nstdout:\n{Stdout}\nstderr:\n{_stderr}");
        }
        string stderr;
        lock (_stderr)
            stderr = _stderr.ToString();
        return new KilnResult(_process.ExitCode, Stdout, stderr);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}

internal static partial class NativeMethods
{
    public const int SIGINT = 2;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int pidfd_open(int pid, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int pidfd_send_signal(int pidfd, int signal, nint info, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int close(int fd);
}

/// <summary>One test's world: a state root, a files directory, and every process started under them killed at the end.</summary>
public sealed class KilnSandboxRoot : IAsyncDisposable
{
    public static readonly string Kiln = Path.Combine(AppContext.BaseDirectory, "kiln");
    public static readonly string Fake = Path.Combine(AppContext.BaseDirectory, "fake-firecracker");
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    public KilnSandboxRoot()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        Root = $"/tmp/kc-{id}";
        Files = $"/tmp/kc-{id}-f";
        Directory.CreateDirectory(Files);
        Kernel = CreateFile("vmlinux", 4096);
        Rootfs = CreateFile("rootfs.ext4", 1024 * 1024);
    }

    public string Root { get; }

    public string Files { get; }

    public string Kernel { get; }

    public string Rootfs { get; }

    public Dictionary<string, string?> Environment { get; } = new()
    {
        ["KILN_ROOT"] = null,
        ["KILN_FIRECRACKER"] = Fake,
        ["KILN_TEST_KERNEL"] = null,
    };

    public string CreateFile(string name, long length)
    {
        var path = Path.Combine(Files, name);
        using var stream = File.Create(path);
        stream.SetLength(length);
        return path;
    }

    private const string DefaultSignalEnv = "/usr/bin/env";

    public ProcessStartInfo StartInfo(IEnumerable<string> args, bool withRoot = true)
    {
        var start = new ProcessStartInfo(Kiln)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // A test run started in the background (`cmd &` in a script) inherits SIGINT as ignored, and an ignored
        // SIGINT stays ignored across exec, so kiln would never see the Ctrl-C the tests send. env(1) puts the
        // default disposition back and execs kiln in place (the PID stays kiln's).
        if (File.Exists(DefaultSignalEnv))
        {
            start.FileName = DefaultSignalEnv;
            start.ArgumentList.Add("--default-signal=INT,QUIT");
            start.ArgumentList.Add(Kiln);
        }
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        if (withRoot)
        {
            start.ArgumentList.Add("--root");
            start.ArgumentList.Add(Root);
        }
        foreach (var (key, value) in Environment)
        {
            if (value is null)
                start.Environment.Remove(key);
            else
                start.Environment[key] = value;
        }
        return start;
    }

    public KilnChild Start(params string[] args) => new(StartInfo(args));

    public async Task<KilnResult> RunAsync(params string[] args)
    {
        await using var child = new KilnChild(StartInfo(args));
        return await child.WaitAsync(CommandTimeout, TestContext.Current.CancellationToken);
    }

    public async Task<KilnResult> RunWithoutRootAsync(params string[] args)
    {
        await using var child = new KilnChild(StartInfo(args, withRoot: false));
        return await child.WaitAsync(CommandTimeout, TestContext.Current.CancellationToken);
    }

    /// <summary>`kiln run --detach` with the dummy kernel; asserts success and returns the name.</summary>
    public async Task<string> RunDetachedAsync(string name, params string[] extra)
    {
        var result = await RunAsync(["run", "--detach", "--name", name, "--kernel", Kernel, "--rootfs", Rootfs, .. extra]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Stdout.Trim();
    }

    public async Task<JsonElement> PsAsync(string name)
    {
        var ps = await RunAsync("ps", "--json");
        Assert.True(ps.ExitCode == 0, ps.ToString());
        return ps.Json().EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);
    }

    /// <summary>
    /// Kills every process this test made that is still there (VMMs left by a failed test), then deletes: those whose
    /// command line names the root or the files directory, and the VMMs the sandboxes' records under the root name
    /// (a jailed VMM's command line holds only paths inside its chroot). Each is pinned by a pidfd, proven ours after
    /// that (a record's PID counts only with its start time), and signalled through the pidfd: never a reused PID.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await KillProcessesOfThisTestAsync();
        TryDelete(Root);
        TryDelete(Files);
    }

    /// <summary>SIGKILL to every process <see cref="ProcessesOfThisTest()"/> finds, through a pidfd; waits for each to end.</summary>
    public async Task KillProcessesOfThisTestAsync()
    {
        var recorded = RecordedVmms();
        var killed = new List<int>();
        foreach (var pid in ProcessesOfThisTest(recorded))
        {
            var pidfd = NativeMethods.pidfd_open(pid, 0);
            if (pidfd < 0)
                continue;
            try
            {
                // Checked again now that the pidfd pins the process: the PID cannot have been handed to another.
                if (IsOfThisTest(pid, recorded) && NativeMethods.pidfd_send_signal(pidfd, NativeMethods.SIGKILL, 0, 0) == 0)
                    killed.Add(pid);
            }
            finally
            {
                NativeMethods.close(pidfd);
            }
        }
        foreach (var pid in killed)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (ArgumentException)
            {
            }
            catch (TimeoutException)
            {
            }
        }
    }

    /// <summary>The processes <see cref="DisposeAsync"/> kills (see there).</summary>
    public IEnumerable<int> ProcessesOfThisTest() => ProcessesOfThisTest(RecordedVmms());

    private IEnumerable<int> ProcessesOfThisTest(IReadOnlyList<global::Kiln.Host.ProcessIdentity> recorded)
    {
        var self = System.Environment.ProcessId;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out var pid) && pid != self && IsOfThisTest(pid, recorded))
                yield return pid;
        }
    }

    private bool IsOfThisTest(int pid, IReadOnlyList<global::Kiln.Host.ProcessIdentity> recorded)
    {
        if (recorded.Any(r => r.Pid == pid && global::Kiln.Host.ProcFs.IsSameProcess(r)))
            return true;
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains(Root, StringComparison.Ordinal) || cmdline.Contains(Files, StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // gone meanwhile, or not readable: not provably ours
        }
    }

    /// <summary>The VMM identities (PID + start time + executable) the sandboxes' state files under the root record.</summary>
    private List<global::Kiln.Host.ProcessIdentity> RecordedVmms()
    {
        var found = new List<global::Kiln.Host.ProcessIdentity>();
        if (!Directory.Exists(Root))
            return found;
        foreach (var state in Directory.EnumerateFiles(Root, "state.json", SearchOption.AllDirectories))
        {
            try
            {
                using var json = JsonDocument.Parse(File.ReadAllText(state));
                var record = json.RootElement;
                if (record.TryGetProperty("pid", out var pid) && record.TryGetProperty("start_time_ticks", out var ticks))
                {
                    var exe = record.TryGetProperty("executable_path", out var e) ? e.GetString() : null;
                    found.Add(new global::Kiln.Host.ProcessIdentity(pid.GetInt32(), ticks.GetUInt64(), exe));
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
            {
                // Half-written or unreadable: its VMM, if any, is found by its command line or not at all.
            }
        }
        return found;
    }

    public static IEnumerable<int> ProcessesMentioning(string text)
    {
        var self = System.Environment.ProcessId;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid) || pid == self)
                continue;
            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(directory, "cmdline"));
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }
            if (cmdline.Contains(text, StringComparison.Ordinal))
                yield return pid;
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
