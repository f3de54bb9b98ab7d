// One firecracker process: launch (owned or detached), output capture, exit status, identity-checked signals and the
// SIGTERM → SIGKILL stop. A process we launched is a .NET Process child (reaped by .NET, never by us); a process
// re-attached from persisted state is watched through a pidfd.
using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Kiln.Host;
using Kiln.Interop;

namespace Kiln.Vmm;

/// <summary>A firecracker process.</summary>
public sealed class VmmProcess : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<VmmProcess, byte> Owned = new();
    private static int _exitHookInstalled;

    private readonly Process? _process;
    private readonly PidFd? _pidFd;
    private readonly OutputTail _tail;
    private readonly string _outputPath;
    private readonly bool _detached;
    private readonly Task<VmmProcessState> _exited;
    private readonly FileStream? _outputFile;
    private readonly Lock _outputGate = new();
    private volatile VmmProcessState _state;
    private int _disposed;

    private VmmProcess(Process? process, PidFd? pidFd, ProcessIdentity identity, string outputPath, bool detached,
        OutputTail tail, FileStream? outputFile, Func<VmmProcess, Task<VmmProcessState>> watch)
    {
        _process = process;
        _pidFd = pidFd;
        Identity = identity;
        _outputPath = outputPath;
        _detached = detached;
        _tail = tail;
        _outputFile = outputFile;
        _state = new VmmProcessState.Started(identity.Pid);
        _exited = watch(this);
    }

    /// <summary>The process id.</summary>
    public int Pid => Identity.Pid;

    /// <summary>Who the process is (PID, start time, executable): recorded so a later owner signals only it.</summary>
    public ProcessIdentity Identity { get; }

    /// <summary>Whether this process launched it (and so knows its exit code).</summary>
    public bool IsChild => _process is not null;

    /// <summary>Whether it runs in its own session, writing straight into the output file.</summary>
    public bool Detached => _detached;

    /// <summary>The file receiving the process's output.</summary>
    public string OutputPath => _outputPath;

    /// <summary>The current state: <see cref="VmmProcessState.Started"/> until it ends.</summary>
    public VmmProcessState State => _state;

    /// <summary>
    /// Whether the process has ended, asked of the kernel now: true as soon as it died, while <see cref="State"/> changes
    /// only once its output is drained and its status collected.
    /// </summary>
    public bool HasExited => _state.HasEnded || (_pidFd is not null ? _pidFd.HasExited() : !ProcFs.IsSameProcess(Identity));

    /// <summary>Completes with the final state once the process has ended and its output is drained.</summary>
    public Task<VmmProcessState> Exited => _exited;

    /// <summary>The last lines of output (for error reports).</summary>
    public string ReadOutputTail() => _detached || _process is null ? ReadFileTail(_outputPath, 64) : _tail.ToString();

    /// <summary>Launches firecracker. Output readers are attached before it can write anything we would miss.</summary>
    public static async Task<VmmProcess> LaunchAsync(VmmLaunchOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        cancellationToken.ThrowIfCancellationRequested();
        var executable = ResolveExecutable(options.ExecutablePath)
            ?? throw new VmmLaunchException(options.ExecutablePath, "not found (or not a file)");
        var identityPath = ResolveFinalTarget(executable);
        var psi = BuildStartInfo(executable, options);
        var tail = new OutputTail(options.TailLines);

        FileStream? outputFile = null;
        if (!options.Detached)
            outputFile = new FileStream(options.OutputPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        else
            // The shell appends; create it now so a reader never finds it missing.
            await File.AppendAllTextAsync(options.OutputPath, "", cancellationToken).ConfigureAwait(false);

        Process process;
        try
        {
            process = options.Detached
                ? StartProcess(psi, executable)
                : await OwnerThread.RunAsync(() => StartProcess(psi, executable)).ConfigureAwait(false);
        }
        catch
        {
            outputFile?.Dispose();
            throw;
        }

        var pid = process.Id;
        // Opened at once: from here on signals go to this process even if the PID is later reused.
        var pidFd = PidFd.TryOpen(pid);
        var start = ProcFs.TryGetStartTime(pid) ?? 0;
        var vmm = new VmmProcess(process, pidFd, new ProcessIdentity(pid, start, identityPath), options.OutputPath,
            options.Detached, tail, outputFile, static self => self.WatchChildAsync());
        if (!options.Detached)
            RegisterOwned(vmm);
        return vmm;
    }

    /// <summary>
    /// Re-attaches to a process launched by an earlier owner. Returns null when no process with that identity
    /// runs any more (gone, or the PID now belongs to another process).
    /// </summary>
    public static VmmProcess? TryAttach(ProcessIdentity identity, string outputPath)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var pidFd = PidFd.TryOpen(identity.Pid);
        // Checked after the pidfd is open: the pidfd pins the process, so a match now cannot turn into a reused PID.
        if (!ProcFs.IsSameProcess(identity))
        {
            pidFd?.Dispose();
            return null;
        }
        return new VmmProcess(null, pidFd, identity, outputPath, detached: true, new OutputTail(), null,
            static self => self.WatchAttachedAsync());
    }

    /// <summary>
    /// Sends a signal if the process is still the one launched; false when it has ended. Never signals a PID that
    /// now belongs to another process.
    /// </summary>
    public bool TrySignal(int signal)
    {
        if (_state.HasEnded)
            return false;
        if (_pidFd is not null)
            return _pidFd.TrySignal(signal);
        // No pidfd (kernel < 5.3): fall back to kill(2), guarded by the identity check.
        if (!ProcFs.IsSameProcess(Identity))
            return false;
        if (LibC.Kill(Pid, signal) == 0)
            return true;
        var errno = LibC.LastErrno;
        return errno == LibC.ESRCH ? false : throw new Win32Exception(errno, $"kill({Pid}, {signal}) failed");
    }

    /// <summary>
    /// SIGTERM, then SIGKILL if it has not ended within <paramref name="grace"/> (measured on
    /// <paramref name="timeProvider"/>); returns once it has ended and been reaped.
    /// </summary>
    public async Task<VmmStopOutcome> StopAsync(TimeSpan grace, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (_state.HasEnded || !TrySignal(LibC.SIGTERM))
        {
            await _exited.WaitAsync(cancellationToken).ConfigureAwait(false);
            return VmmStopOutcome.AlreadyExited;
        }
        try
        {
            await _exited.WaitAsync(grace, timeProvider, cancellationToken).ConfigureAwait(false);
            return VmmStopOutcome.Terminated;
        }
        catch (TimeoutException)
        {
        }
        await KillAsync(cancellationToken).ConfigureAwait(false);
        return VmmStopOutcome.Killed;
    }

    /// <summary>SIGKILL, then wait until it has ended.</summary>
    public async Task KillAsync(CancellationToken cancellationToken = default)
    {
        TrySignal(LibC.SIGKILL);
        await _exited.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<VmmProcessState> WatchChildAsync()
    {
        var process = _process!;
        Task pumps = Task.CompletedTask;
        if (!_detached)
        {
            pumps = Task.WhenAll(
                PumpAsync(process.StandardOutput.BaseStream),
                PumpAsync(process.StandardError.BaseStream));
        }
        // Process.WaitForExitAsync reaps through .NET's SIGCHLD handling; we never call waitpid ourselves.
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        var final = VmmProcessState.FromExitCode(process.ExitCode);
        await pumps.ConfigureAwait(false);
        _state = final;
        Owned.TryRemove(this, out _);
        if (_outputFile is not null)
            await _outputFile.DisposeAsync().ConfigureAwait(false);
        return final;
    }

    private async Task<VmmProcessState> WatchAttachedAsync()
    {
        if (_pidFd is not null)
        {
            await _pidFd.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        else
        {
            // Without pidfds there is no exit notification for a process that is not our child.
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (ProcFs.IsSameProcess(Identity))
                await timer.WaitForNextTickAsync().ConfigureAwait(false);
        }
        VmmProcessState final = new VmmProcessState.Exited(null);
        _state = final;
        return final;
    }

    private async Task PumpAsync(Stream stream)
    {
        var buffer = new byte[16 * 1024];
        var chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
        var decoder = Encoding.UTF8.GetDecoder();
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer).ConfigureAwait(false);
                if (n == 0)
                    break;
                lock (_outputGate)
                {
                    // Flushed per chunk: the console file is read live (e.g. waiting for a guest's message).
                    _outputFile!.Write(buffer, 0, n);
                    _outputFile.Flush();
                }
                var c = decoder.GetChars(buffer, 0, n, chars, 0);
                _tail.Append(chars.AsSpan(0, c));
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            _tail.AppendLine($"[kiln: output capture ended: {e.Message}]");
        }
    }

    private static ProcessStartInfo BuildStartInfo(string executable, VmmLaunchOptions options)
    {
        ProcessStartInfo psi;
        if (options.Detached)
        {
            var setsid = FindSystemTool("setsid")
                ?? throw new VmmLaunchException(executable, "a detached VMM needs setsid(1) (util-linux), which was not found");
            // setsid does not fork when its caller is not a group leader (a fresh child is not), so the PID .NET
            // reports stays the VMM's; the shell only redirects and execs.
            psi = new ProcessStartInfo(setsid) { UseShellExecute = false };
            psi.ArgumentList.Add("--");
            psi.ArgumentList.Add("/bin/sh");
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("exec \"$@\" </dev/null >>\"$KILN_VMM_OUTPUT\" 2>&1");
            psi.ArgumentList.Add("kiln-vmm");
            psi.Environment["KILN_VMM_OUTPUT"] = options.OutputPath;
        }
        else if (FindSystemTool("setpriv") is { } setpriv)
        {
            // SIGKILL the VMM when its parent thread (the owner thread, i.e. this process) dies, even by SIGKILL
            // where no exit handler runs. setpriv execs, so the PID stays the VMM's.
            // An owned VMM also gets its own session when setsid(1) is there: a terminal's Ctrl-C goes to the
            // foreground process group, and the owner, not the VMM, decides how a VM stops (SIGTERM, then SIGKILL).
            // setsid execs in place too (a fresh child is no group leader), so the PID stays the VMM's.
            if (FindSystemTool("setsid") is { } ownSession)
            {
                psi = new ProcessStartInfo(ownSession) { UseShellExecute = false };
                psi.ArgumentList.Add("--");
                psi.ArgumentList.Add(setpriv);
            }
            else
            {
                psi = new ProcessStartInfo(setpriv) { UseShellExecute = false };
            }
            psi.ArgumentList.Add("--pdeathsig");
            psi.ArgumentList.Add("KILL");
            psi.ArgumentList.Add("--");
        }
        else
        {
            psi = new ProcessStartInfo { UseShellExecute = false };
        }

        if (options.PrivateMountNamespace)
        {
            var unshare = FindSystemTool("unshare")
                ?? throw new VmmLaunchException(executable, "a private mount namespace needs unshare(1) (util-linux), which was not found");
            // Without --fork unshare execs in place; private propagation keeps its bind mounts from the host's.
            if (psi.FileName.Length == 0)
                psi.FileName = unshare;
            else
                psi.ArgumentList.Add(unshare);
            psi.ArgumentList.Add("--mount");
            psi.ArgumentList.Add("--propagation");
            psi.ArgumentList.Add("private");
            psi.ArgumentList.Add("--");
        }
        if (psi.FileName.Length == 0)
            psi.FileName = executable;
        else
            psi.ArgumentList.Add(executable);
        foreach (var arg in options.Arguments.ToList())
            psi.ArgumentList.Add(arg);

        if (!options.Detached)
        {
            psi.RedirectStandardOutput = true;
            psi.RedirectStandardError = true;
            // Firecracker reads the serial console's input from stdin and puts a terminal in raw mode: never give
            // it ours.
            psi.RedirectStandardInput = true;
        }
        if (options.WorkingDirectory is not null)
            psi.WorkingDirectory = options.WorkingDirectory;
        if (options.Environment is not null)
        {
            foreach (var (key, value) in options.Environment)
                psi.Environment[key] = value;
        }
        return psi;
    }

    private static Process StartProcess(ProcessStartInfo psi, string executable)
    {
        try
        {
            return Process.Start(psi) ?? throw new VmmLaunchException(executable, "Process.Start returned no process");
        }
        catch (Win32Exception e)
        {
            throw new VmmLaunchException(executable, e.Message, e);
        }
    }

    private static string? FindSystemTool(string name)
    {
        foreach (var dir in new[] { "/usr/bin", "/bin", "/usr/sbin", "/sbin" })
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
                return path;
        }
        return null;
    }

    /// <summary>An absolute path for <paramref name="path"/>, looking bare names up on PATH; null when not found.</summary>
    public static string? ResolveExecutable(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (path.Contains('/', StringComparison.Ordinal))
            return File.Exists(path) ? Path.GetFullPath(path) : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, path);
            if (File.Exists(candidate))
                return Path.GetFullPath(candidate);
        }
        return null;
    }

    // /proc/PID/exe names the final target of any symlink chain.
    private static string ResolveFinalTarget(string path)
    {
        try
        {
            return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path;
        }
        catch (IOException)
        {
            return path;
        }
    }

    /// <summary>The last <paramref name="lines"/> lines of a file (at most its last 16 KiB), or "" when it cannot be read.</summary>
    public static string ReadFileTail(string path, int lines)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var length = stream.Length;
            var take = (int)Math.Min(length, 16 * 1024);
            stream.Seek(length - take, SeekOrigin.Begin);
            var buffer = new byte[take];
            stream.ReadExactly(buffer);
            var tail = new OutputTail(lines);
            tail.Append(Encoding.UTF8.GetString(buffer));
            return tail.ToString();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static void RegisterOwned(VmmProcess vmm)
    {
        Owned.TryAdd(vmm, 0);
        if (Interlocked.Exchange(ref _exitHookInstalled, 1) == 0)
        {
            // Normal exits (and unhandled exceptions) take owned VMMs with them; a SIGKILLed owner relies on the
            // pdeathsig set at launch.
            AppDomain.CurrentDomain.ProcessExit += static (_, _) => KillAllOwned();
        }
    }

    private static void KillAllOwned()
    {
        foreach (var vmm in Owned.Keys)
        {
            try
            {
                vmm.TrySignal(LibC.SIGKILL);
            }
            catch (Win32Exception)
            {
                // Exiting: nothing left to report to.
            }
        }
    }

    /// <summary>
    /// Releases handles. An owned VMM (launched by this process, not detached) is killed first: it must not outlive
    /// its owner by accident. A detached or re-attached one keeps running.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (IsChild && !_detached && !_state.HasEnded)
            await KillAsync().ConfigureAwait(false);
        Owned.TryRemove(this, out _);
        if (IsChild && !_detached)
            await _exited.ConfigureAwait(false);
        _pidFd?.Dispose();
        _process?.Dispose();
    }
}
