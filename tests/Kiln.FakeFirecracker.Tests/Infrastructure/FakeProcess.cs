// One run of a firecracker binary (the stand-in unless another is given) as a real child process: output captured
// from the first byte, exit status exact.
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Win32.SafeHandles;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed class FakeProcess : IAsyncDisposable
{
    /// <summary>The stand-in next to the tests; KILN_FAKE_FIRECRACKER_BINARY runs the suite against another build
    /// (a native AOT publish, say).</summary>
    public static readonly string BinaryPath = Environment.GetEnvironmentVariable("KILN_FAKE_FIRECRACKER_BINARY") is { Length: > 0 } other
        ? other
        : Path.Combine(AppContext.BaseDirectory, "fake-firecracker");
    private readonly StringBuilder _output = new();
    private readonly Lock _gate = new();
    private readonly Task<int> _exit;
    private readonly Task _reader;
    private TaskCompletionSource _outputChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private FakeProcess(int pid, int outputFd, string? apiSocket)
    {
        Pid = pid;
        ApiSocket = apiSocket;
        var stream = new FileStream(new SafeFileHandle(outputFd, ownsHandle: true), FileAccess.Read, 1);
        _reader = Task.Factory.StartNew(() => Pump(stream), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        _exit = Task.Factory.StartNew(() => NativeMethods.WaitExit(pid), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public int Pid { get; }

    public string? ApiSocket { get; }

    public string Output
    {
        get
        {
            lock (_gate)
            {
                return _output.ToString();
            }
        }
    }

    public bool HasExited => _exit.IsCompleted;

    /// <summary>Starts <paramref name="binary"/> (the stand-in by default); <paramref name="apiSocket"/> is passed as
    /// --api-sock when given.</summary>
    public static FakeProcess Start(IEnumerable<string> args, string? apiSocket = null, IReadOnlyDictionary<string, string>? env = null, string? binary = null)
    {
        var all = new List<string>();
        if (apiSocket is not null)
        {
            all.AddRange(["--api-sock", apiSocket]);
        }

        all.AddRange(args);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry kv in Environment.GetEnvironmentVariables())
        {
            var key = (string)kv.Key;
            if (!key.StartsWith("FAKE_FC_", StringComparison.Ordinal))
            {
                environment[key] = (string)kv.Value!;
            }
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            environment[k] = v;
        }

        var (pid, fd) = NativeMethods.Spawn(binary ?? BinaryPath, all, environment);
        return new FakeProcess(pid, fd, apiSocket);
    }

    /// <summary>Starts another program (a jailer) the same way: output captured, exit status exact.</summary>
    public static FakeProcess StartProgram(string path, IReadOnlyList<string> args, string? apiSocket = null)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry kv in Environment.GetEnvironmentVariables())
        {
            environment[(string)kv.Key] = (string)kv.Value!;
        }

        var (pid, fd) = NativeMethods.Spawn(path, args, environment);
        return new FakeProcess(pid, fd, apiSocket);
    }

    private void Pump(FileStream stream)
    {
        var buffer = new byte[8192];
        var decoder = Encoding.UTF8.GetDecoder();
        var chars = new char[8192];
        using (stream)
        {
            while (true)
            {
                int n;
                try
                {
                    n = stream.Read(buffer, 0, buffer.Length);
                }
                catch (IOException)
                {
                    n = 0;
                }

                if (n == 0)
                {
                    break;
                }

                var c = decoder.GetChars(buffer, 0, n, chars, 0);
                lock (_gate)
                {
                    _output.Append(chars, 0, c);
                    _outputChanged.TrySetResult();
                    _outputChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }

        lock (_gate)
        {
            _outputChanged.TrySetResult();
        }
    }

    /// <summary>Waits until the output matches <paramref name="pattern"/>; false if the deadline passes or output ends.</summary>
    public async Task<bool> WaitForOutputAsync(string pattern, TimeSpan within, CancellationToken ct)
    {
        var regex = new Regex(pattern, RegexOptions.Multiline);
        var deadline = Task.Delay(within, ct);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (regex.IsMatch(_output.ToString()))
                {
                    return true;
                }

                changed = _outputChanged.Task;
            }

            if (_reader.IsCompleted || await Task.WhenAny(changed, deadline, _reader).ConfigureAwait(false) == deadline)
            {
                lock (_gate)
                {
                    return regex.IsMatch(_output.ToString());
                }
            }
        }
    }

    /// <summary>Waits until the output grows past <paramref name="length"/> characters; false if the deadline passes
    /// or the output ends first.</summary>
    public async Task<bool> WaitForOutputChangeAsync(int length, TimeSpan within, CancellationToken ct)
    {
        Task changed;
        lock (_gate)
        {
            if (_output.Length > length)
            {
                return true;
            }

            changed = _outputChanged.Task;
        }

        await Task.WhenAny(changed, Task.Delay(within, ct), _reader).ConfigureAwait(false);
        lock (_gate)
        {
            return _output.Length > length;
        }
    }

    /// <summary>Exit code, or minus the signal number; null when it is still running after <paramref name="within"/>.</summary>
    public async Task<int?> WaitExitAsync(TimeSpan within, CancellationToken ct = default)
    {
        var deadline = Task.Delay(within, ct);
        if (await Task.WhenAny(_exit, deadline).ConfigureAwait(false) != _exit)
        {
            return null;
        }

        // The exit can be seen before the reader has drained the pipe: what the process wrote last (its error line)
        // is only certain once the pipe reaches end of file. A child that inherited the pipe (a daemonized VMM) keeps
        // it open, so this drain is bounded by the same deadline.
        await Task.WhenAny(_reader, deadline).ConfigureAwait(false);
        var code = await _exit.ConfigureAwait(false);
        // A core-dumping signal (SIGABRT) still counts as death by that signal.
        return code;
    }

    public void Signal(int sig)
    {
        if (!HasExited)
        {
            _ = NativeMethods.kill(Pid, sig);
        }
    }

    /// <summary>/proc/PID/task/*/comm, sorted, the way the transcripts list threads.</summary>
    public IReadOnlyList<string> Threads()
    {
        var names = new List<string>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{Pid}/task"))
        {
            try
            {
                names.Add(File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n'));
            }
            catch (IOException)
            {
                // The thread ended meanwhile.
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Firecracker's own threads only: the .NET runtime's (and KVM's kernel task) are left out.</summary>
    public static IReadOnlyList<string> FirecrackerThreads(IEnumerable<string> threads) =>
        threads.Where(t => t is "firecracker" or "fc_api" || t.StartsWith("fc_vcpu ", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();

    /// <summary>Probes GET / until it answers, racing the process's exit; false if it exited (or the deadline passed).</summary>
    public async Task<bool> WaitForApiAsync(TimeSpan within, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < within && !HasExited)
        {
            try
            {
                using var client = await ApiClient.ConnectAsync(ApiSocket!, ct).ConfigureAwait(false);
                var r = await client.SendAsync("GET", "/", null, ct).ConfigureAwait(false);
                return r.Status == 200;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
                // Not listening yet: the probe is the readiness signal, so try again right away (bounded by the deadline).
                await Task.WhenAny(_exit, Task.Delay(2, ct)).ConfigureAwait(false);
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        Signal(NativeMethods.SIGKILL);
        await _exit.ConfigureAwait(false);
        await _reader.ConfigureAwait(false);
    }
}
