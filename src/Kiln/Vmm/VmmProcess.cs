// One firecracker process: launch (owned or detached), output capture, exit status, identity-checked signals and the
// SIGTERM → SIGKILL stop. A process we launch is started with posix_spawn (its own session, its stdio wired in the
// same call: no setsid(1) or shell exec in front of it), reaped by us, and signalled through the pidfd opened before it
// could be reaped; a process re-attached from persisted state is watched through a pidfd.
using System.Collections;
using System.Collections.Concurrent;
using System.ComponentModel;
using System.Text;
using Kiln.Host;
using Kiln.Interop;

namespace Kiln.Vmm;

/// <summary>A firecracker process.</summary>
public sealed class VmmProcess : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<VmmProcess, byte> Owned = new();
    private static int _exitHookInstalled;

    private readonly SpawnedProcess? _child;
    private readonly PidFd? _pidFd;
    private readonly OutputTail _tail;
    private volatile string _outputPath;
    private readonly bool _detached;
    private readonly Task<VmmProcessState> _exited;
    private readonly RotatingFileWriter? _outputFile;
    private volatile VmmProcessState _state;
    private Stream? _serialInput;
    private int _disposed;

    private VmmProcess(SpawnedProcess? child, PidFd? pidFd, ProcessIdentity identity, string outputPath, bool detached,
        OutputTail tail, RotatingFileWriter? outputFile, Func<VmmProcess, Task<VmmProcessState>> watch)
    {
        _child = child;
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
    public bool IsChild => _child is not null;

    /// <summary>Whether it runs in its own session, writing straight into the output file.</summary>
    public bool Detached => _detached;

    /// <summary>The file receiving the process's output.</summary>
    public string OutputPath => _outputPath;

    /// <summary>
    /// The guest's serial input (Firecracker's stdin) of an owned VMM; null for a detached or re-attached one (see
    /// <see cref="VmmLaunchOptions.InputPath"/>).
    /// </summary>
    public Stream? SerialInput
    {
        get
        {
            if (_detached || _child?.StandardInput is not { IsInvalid: false } handle)
                return null;
            // The pipe's write end stays owned by the spawned process (closed when it is disposed).
            return _serialInput ??= new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(handle.DangerousGetHandle(), ownsHandle: false), FileAccess.Write, 1);
        }
    }

    /// <summary>The current state: <see cref="VmmProcessState.Started"/> until it ends.</summary>
    public VmmProcessState State => _state;

    /// <summary>
    /// Whether the process has ended, asked of the kernel now: true as soon as it died, while <see cref="State"/> changes
    /// only once its output is drained and its status collected.
    /// </summary>
    public bool HasExited => _state.HasEnded || (_pidFd is not null ? _pidFd.HasExited() : !ProcFs.IsSameProcess(Identity));

    /// <summary>Completes with the final state once the process has ended and its output is drained.</summary>
    public Task<VmmProcessState> Exited => _exited;

    /// <summary>
    /// Has the output continue in <paramref name="path"/> (what was written so far goes with it): an owned VMM's
    /// output file is moved under its writer; a detached or attached one's file is renamed (the VMM's descriptor
    /// follows the inode). Both paths must be on one file system.
    /// </summary>
    public void MoveOutput(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (_outputFile is not null)
            _outputFile.MoveTo(path);
        else
            File.Move(_outputPath, path, overwrite: true);
        _outputPath = path;
    }

    /// <summary>The last lines of output (for error reports).</summary>
    public string ReadOutputTail() => _detached || _child is null ? ReadFileTail(_outputPath, 64) : _tail.ToString();

    /// <summary>Launches firecracker. Output readers are attached before it can write anything we would miss.</summary>
    public static async Task<VmmProcess> LaunchAsync(VmmLaunchOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        cancellationToken.ThrowIfCancellationRequested();
        var executable = ResolveExecutable(options.ExecutablePath)
            ?? throw new VmmLaunchException(options.ExecutablePath, "not found (or not a file)");
        var identityPath = ResolveFinalTarget(executable);
        // An owned VMM is exec'd through setpriv, whose own exit code (126) would otherwise be the only trace of an
        // executable the kernel cannot run, reported later as a VMM that died before its API appeared.
        if (!IsExecutableFormat(identityPath))
            throw new VmmLaunchException(options.ExecutablePath, "is not an executable (neither an ELF binary nor a #! script)");
        var argv = BuildArgv(executable, options);
        var environment = BuildEnvironment(options);
        var tail = new OutputTail(options.TailLines);

        RotatingFileWriter? outputFile = null;
        if (!options.Detached)
            outputFile = new RotatingFileWriter(options.OutputPath, options.OutputRotation ?? OutputRotation.Unbounded);
        Func<Stream, Task>? attachReader = outputFile is null ? null : output => PumpAsync(output, outputFile, tail);

        var keeper = options.Detached && options.OutputFifoPath is null ? options.ConsoleKeeper : null;
        SpawnedProcess child;
        try
        {
            // A detached VMM's stdout/stderr are opened onto the file by the spawn itself (created if missing), so a
            // reader finds the file as soon as the launch returns; with a keeper, onto the keeper's FIFO (the keeper
            // creates the file before it says it is ready). An owned VMM is spawned from the owner thread: its death
            // signal follows that thread.
            if (keeper is not null)
            {
                var fifo = Kiln.Vmm.ConsoleKeeper.FifoPath(options.OutputPath);
                DeleteIfPresent(fifo);
                FileNodes.CreateFifo(fifo);
            }
            child = !options.Detached
                ? await OwnerThread.RunAsync(() => Spawn(argv, environment, options, new SpawnStdio.Pipes(), executable, attachReader)).ConfigureAwait(false)
                : options.OutputFifoPath is { } callersFifo
                    ? Spawn(argv, environment, options, new SpawnStdio.ToFifo(callersFifo, options.InputPath), executable)
                : keeper is not null
                    ? Spawn(argv, environment, options, new SpawnStdio.ToFifo(Kiln.Vmm.ConsoleKeeper.FifoPath(options.OutputPath), options.InputPath), executable)
                    : Spawn(argv, environment, options, new SpawnStdio.AppendToFile(options.OutputPath, options.InputPath), executable);
        }
        catch
        {
            outputFile?.Dispose();
            throw;
        }

        var pid = child.Pid;
        var start = ProcFs.TryGetStartTime(pid) ?? 0;
        var vmm = new VmmProcess(child, child.PidFd, new ProcessIdentity(pid, start, identityPath), options.OutputPath,
            options.Detached, tail, outputFile, static self => self.WatchChildAsync());
        if (!options.Detached)
            RegisterOwned(vmm);
        if (keeper is not null)
        {
            try
            {
                vmm.ConsoleKeeper = await Kiln.Vmm.ConsoleKeeper.LaunchAsync(keeper, vmm.Identity, options.OutputPath,
                    options.OutputRotation ?? OutputRotation.Default, options.InputPath, options.WorkingDirectory, options.TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // No VMM without its keeper: its output would go nowhere. Killed here, as any failed launch is.
                await vmm.KillAsync(CancellationToken.None).ConfigureAwait(false);
                DeleteIfPresent(Kiln.Vmm.ConsoleKeeper.FifoPath(options.OutputPath));
                throw;
            }
        }
        return vmm;
    }

    /// <summary>
    /// The console keeper that writes this VMM's output file (<see cref="VmmLaunchOptions.ConsoleKeeper"/>); null
    /// without one. Recorded so another process can report it and see it gone after a stop.
    /// </summary>
    public ProcessIdentity? ConsoleKeeper { get; internal set; }

    private static void DeleteIfPresent(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>
    /// Re-attaches to a process launched by an earlier owner. Returns null when no process with that identity
    /// runs any more (gone, or the PID now belongs to another process).
    /// </summary>
    /// <param name="identity">The VMM, as recorded at its launch.</param>
    /// <param name="outputPath">Its output file.</param>
    /// <param name="consoleKeeper">Its console keeper, as recorded at its launch, if it had one: the attached VMM's end
    /// then waits for the keeper's too.</param>
    public static VmmProcess? TryAttach(ProcessIdentity identity, string outputPath, ProcessIdentity? consoleKeeper = null)
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
            static self => self.WatchAttachedAsync()) { ConsoleKeeper = consoleKeeper };
    }

    /// <summary>
    /// The firecracker an owner spawned but died before recording: the process running <paramref name="executablePath"/>
    /// with <c>--api-sock <paramref name="apiSocketPath"/></c> that started no earlier than
    /// <paramref name="spawnedNotBefore"/> (clock ticks since boot, taken just before the spawn). That is its identity:
    /// executable and start time, as for a recorded one, and a socket path only one sandbox uses. Null when none runs.
    /// </summary>
    public static ProcessIdentity? FindUnrecorded(string executablePath, string apiSocketPath, ulong spawnedNotBefore)
    {
        if (ResolveExecutable(executablePath) is not { } resolved)
            return null;
        var executable = ResolveFinalTarget(resolved);
        var socket = Path.GetFullPath(apiSocketPath);
        foreach (var pid in ProcFs.EnumeratePids())
        {
            if (ProcFs.TryGetIdentity(pid) is not { } identity || identity.StartTimeTicks < spawnedNotBefore
                || !string.Equals(identity.ExecutablePath, executable, StringComparison.Ordinal))
            {
                continue;
            }
            var args = ProcFs.TryGetCommandLine(pid) ?? [];
            for (var i = 0; i + 1 < args.Count; i++)
            {
                if (args[i] == "--api-sock" && Path.GetFullPath(args[i + 1]) == socket)
                    return identity;
            }
        }
        return null;
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

    /// <summary>SIGKILL, then wait until it has ended.</summary>
    public async Task KillAsync(CancellationToken cancellationToken = default)
    {
        TrySignal(LibC.SIGKILL);
        await _exited.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<VmmProcessState> WatchChildAsync()
    {
        var child = _child!;
        var pumps = child.Readers;
        // Reaped by SpawnedProcess's own waitpid: .NET's SIGCHLD handling only reaps the children it started.
        var (code, signal) = SpawnedProcess.Decode(await child.WaitStatus.ConfigureAwait(false));
        VmmProcessState final = signal is { } s ? new VmmProcessState.Crashed(s) : new VmmProcessState.Exited(code);
        await pumps.ConfigureAwait(false);
        await WaitForKeeperAsync().ConfigureAwait(false);
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
            // The shared reaper thread watches it (no thread per re-attached VMM); a thread of its own only when that
            // thread cannot be used.
            if (ChildReaper.TryWatchAsync(Pid, _pidFd) is { } ended)
                await ended.ConfigureAwait(false);
            else
                await _pidFd.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        else
        {
            // Without pidfds there is no exit notification for a process that is not our child.
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (ProcFs.IsSameProcess(Identity))
                await timer.WaitForNextTickAsync().ConfigureAwait(false);
        }
        await WaitForKeeperAsync().ConfigureAwait(false);
        VmmProcessState final = new VmmProcessState.Exited(null);
        _state = final;
        return final;
    }

    /// <summary>
    /// A VMM with a console keeper has ended only once its keeper has too (it drains the last output and exits), so
    /// that whoever awaits the end finds no process left.
    /// </summary>
    private async Task WaitForKeeperAsync()
    {
        if (ConsoleKeeper is { } keeper)
            await Kiln.Vmm.ConsoleKeeper.WaitGoneAsync(keeper, KeeperGrace, TimeProvider.System).ConfigureAwait(false);
    }

    /// <summary>How long a keeper may take to drain and exit after its VMM did before it is killed.</summary>
    private static readonly TimeSpan KeeperGrace = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Copies the output (stdout and stderr share one pipe) into the output file (flushed per chunk) and the tail, until
    /// end of output. The buffer is small: it is held for as long as the VMM runs, once per VMM, and a read never
    /// takes more than the pipe holds anyway.
    /// </summary>
    private static async Task PumpAsync(Stream stream, RotatingFileWriter outputFile, OutputTail tail)
    {
        var buffer = new byte[OutputChunkBytes];
        var decoder = Encoding.UTF8.GetDecoder();
        var fileFailing = false;
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                while (true)
                {
                    var n = await stream.ReadAsync(buffer).ConfigureAwait(false);
                    if (n == 0)
                        break;
                    fileFailing = TryWrite(outputFile, buffer.AsSpan(0, n), tail, fileFailing);
                    AppendDecoded(decoder, buffer.AsSpan(0, n), tail);
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                tail.AppendLine($"[kiln: output capture ended: {e.Message}]");
            }
        }
    }

    /// <summary>
    /// Writes a chunk to the output file (flushed per chunk: the console file is read live). A file that cannot take it
    /// (a full or failing file system) must not stop the pump: an undrained pipe blocks Firecracker's serial writes, and
    /// with them the guest, and a closed one kills it with SIGPIPE. So the chunk is dropped from the file, the tail still
    /// gets it, and the tail says once when the file started failing and when it took output again.
    /// </summary>
    /// <returns>Whether the file is failing now.</returns>
    private static bool TryWrite(RotatingFileWriter outputFile, ReadOnlySpan<byte> chunk, OutputTail tail, bool wasFailing)
    {
        try
        {
            outputFile.Write(chunk);
            if (wasFailing)
                tail.AppendLine($"[kiln: {outputFile.Path} takes output again; what came meanwhile is only in this tail]");
            return false;
        }
        // ObjectDisposed too: a rotation whose reopen failed leaves the writer closed; draining still matters more.
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            if (!wasFailing)
                tail.AppendLine($"[kiln: {outputFile.Path} cannot take more output ({e.Message}); it is still drained, into this tail only]");
            return true;
        }
    }

    private const int OutputChunkBytes = 4096;

    /// <summary>Decodes <paramref name="bytes"/> into the tail through a stack buffer (a UTF-8 sequence split across chunks is kept by the decoder).</summary>
    private static void AppendDecoded(Decoder decoder, ReadOnlySpan<byte> bytes, OutputTail tail)
    {
        Span<char> chars = stackalloc char[1024];
        while (!bytes.IsEmpty)
        {
            // Stops when the chars are full (then the next round goes on) or the bytes are used up.
            decoder.Convert(bytes, chars, flush: false, out var used, out var written, out _);
            tail.Append(chars[..written]);
            bytes = bytes[used..];
        }
    }

    /// <summary>
    /// The command line to spawn. An owned VMM goes through setpriv(1) when it is there, which sets PR_SET_PDEATHSIG
    /// (SIGKILL when the owner thread, i.e. this process, dies, even by SIGKILL where no exit handler runs) and execs,
    /// so the PID stays the VMM's.
    /// </summary>
    private static List<string> BuildArgv(string executable, VmmLaunchOptions options)
    {
        var argv = new List<string>();
        if (!options.Detached && FindSystemTool("setpriv") is { } setpriv)
            argv.AddRange([setpriv, "--pdeathsig", "KILL", "--"]);
        if (options.NetworkNamespacePath is { } netns)
        {
            var nsenter = FindSystemTool("nsenter")
                ?? throw new VmmLaunchException(executable, "a VMM in a network namespace needs nsenter(1) (util-linux), which was not found");
            if (!Path.IsPathFullyQualified(netns) || !File.Exists(netns))
                throw new VmmLaunchException(executable, $"the network namespace {netns} does not exist");
            // nsenter enters only the network namespace and execs: no fork, the PID stays the VMM's.
            argv.AddRange([nsenter, "--net=" + netns, "--"]);
        }
        // Without --fork unshare(1) execs in place (the PID stays the VMM's); private propagation keeps the clone's
        // bind mounts from the host's.
        if (options.PrivateMountNamespace)
        {
            var unshare = FindSystemTool("unshare")
                ?? throw new VmmLaunchException(executable, "a private mount namespace needs unshare(1) (util-linux), which was not found");
            argv.AddRange([unshare, "--mount", "--propagation", "private", "--"]);
        }
        argv.Add(executable);
        argv.AddRange(options.CommandLine ?? options.Arguments.ToList());
        return argv;
    }

    /// <summary>This process's environment with the options' variables set over it (as ProcessStartInfo does).</summary>
    private static Dictionary<string, string> BuildEnvironment(VmmLaunchOptions options)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
            environment[(string)entry.Key] = (string?)entry.Value ?? "";
        if (options.Environment is not null)
        {
            foreach (var (key, value) in options.Environment)
                environment[key] = value;
        }
        return environment;
    }

    /// <summary>Whether <paramref name="path"/> starts as an ELF binary or a #! script (what execve runs).</summary>
    private static bool IsExecutableFormat(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
            var read = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            return (read >= 4 && magic.SequenceEqual("\u007fELF"u8)) || (read >= 2 && magic[..2].SequenceEqual("#!"u8));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true; // unreadable but perhaps executable: let execve decide
        }
    }

    private static SpawnedProcess Spawn(List<string> argv, Dictionary<string, string> environment, VmmLaunchOptions options,
        SpawnStdio stdio, string executable, Func<Stream, Task>? attachReader = null)
    {
        try
        {
            // Firecracker reads the serial console's input from stdin and puts a terminal in raw mode: an owned VMM
            // gets a pipe of ours, a detached one /dev/null, never our terminal.
            // A detached VMM gets its own session, to outlive ours. An owned one gets its own process group in our
            // session: a terminal's Ctrl-C goes to the foreground process group, and the owner, not the VMM, decides
            // how a VM stops. Not a session of its own: with CONFIG_SCHED_AUTOGROUP a new session is a new scheduler
            // group, which on a loaded machine was measured to slow the VMM's start by tens of milliseconds.
            return SpawnedProcess.Start(argv, environment, options.WorkingDirectory, stdio, options.Detached ? SpawnGroup.NewSession : SpawnGroup.NewProcessGroup, attachReader);
        }
        catch (Win32Exception e)
        {
            throw new VmmLaunchException(executable, e.Message, e);
        }
    }

    internal static string? FindSystemTool(string name)
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
    internal static string ResolveFinalTarget(string path)
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
        _child?.Dispose();
    }
}
