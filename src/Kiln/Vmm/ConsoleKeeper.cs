// The console keeper: a small process of Kiln's own between a detached VMM and its console log, so the log stays
// bounded while no Kiln command holds the VM. The VMM's stdout and stderr are a FIFO (PATH.fifo) that the VMM itself
// opened read-write and non-blocking (SpawnStdio.ToFifo): it is a reader of its own output, so the keeper's death can
// never end it with SIGPIPE, and when nobody drains the FIFO its serial writes fail with EAGAIN and Firecracker drops
// those bytes (counted in uart.error_count) instead of blocking the guest. The keeper reads the FIFO and writes the
// console log through RotatingFileWriter (PATH, PATH.1, …); it serves attach clients on a Unix socket (PATH.sock):
// each gets the output from then on, and what it sends goes to the VMM's serial input FIFO. It races the VMM's exit on
// a pidfd (opened, then checked against the VMM's start time and executable): when the VMM ends it drains what is left,
// removes its FIFO, socket and ready file and exits, so it never outlives the VMM. Its own session: nothing of the
// launcher's (a terminal's Ctrl-C, the launcher's exit) reaches it.
using System.ComponentModel;
using System.Globalization;
using System.Net.Sockets;
using Kiln.Host;
using Kiln.Interop;

namespace Kiln.Vmm;

/// <summary>Runs and finds console keepers.</summary>
public static class ConsoleKeeper
{
    /// <summary>How long the keeper may take to say it is ready after its spawn.</summary>
    public static TimeSpan ReadyTimeout { get; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the keeper drains the FIFO after the VMM's exit before it gives up on the rest.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The FIFO that is the VMM's stdout and stderr.</summary>
    public static string FifoPath(string outputPath) => outputPath + ".fifo";

    /// <summary>The keeper's Unix socket for attach clients.</summary>
    public static string SocketPath(string outputPath) => outputPath + ".sock";

    /// <summary>The file the keeper writes its PID to once it holds the FIFO and serves its socket.</summary>
    public static string ReadyPath(string outputPath) => outputPath + ".keeper";

    /// <summary>Where the keeper's own stdout and stderr go (its failures).</summary>
    public static string LogPath(string outputPath) => outputPath + ".keeper.log";

    /// <summary>
    /// The keeper's main: what a <see cref="ConsoleKeeperCommand"/>'s program calls with the arguments after its own.
    /// Returns the exit code (0 when the VMM ended and the output was drained, 2 for bad arguments).
    /// </summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        KeeperArguments parsed;
        try
        {
            parsed = KeeperArguments.Parse(arguments);
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync("console-keeper: " + e.Message).ConfigureAwait(false);
            return 2;
        }
        await new Keeper(parsed).RunAsync(cancellationToken).ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// Starts a keeper for a VMM already spawned with its stdout on <see cref="FifoPath"/>, and waits until it is
    /// ready (racing its exit, within <see cref="ReadyTimeout"/>).
    /// </summary>
    /// <exception cref="VmmLaunchException">The keeper could not be started, ended, or never became ready.</exception>
    internal static async Task<ProcessIdentity> LaunchAsync(ConsoleKeeperCommand command, ProcessIdentity vmm, string outputPath,
        OutputRotation rotation, string? inputPath, string? workingDirectory, TimeProvider time, CancellationToken cancellationToken)
    {
        var executable = VmmProcess.ResolveExecutable(command.ExecutablePath)
            ?? throw new VmmLaunchException(command.ExecutablePath, "not found (or not a file): it cannot keep the console");
        var ready = ReadyPath(outputPath);
        // A keeper killed by SIGKILL left its ready file: removed before the watch, and the new keeper counts as ready
        // only once the file names its own PID, so that a stale one can never pass for it.
        DeleteIfPresent(ready);
        var argv = new List<string> { executable };
        argv.AddRange(command.Arguments);
        argv.AddRange(new KeeperArguments(vmm, FifoPath(outputPath), outputPath, rotation, inputPath, SocketPath(outputPath)).ToList());
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");

        // Watched before the spawn, so the file's creation cannot slip between a look and the wait.
        using var appeared = new WatchedFile(ready);
        SpawnedProcess child;
        try
        {
            child = SpawnedProcess.Start(argv, environment, workingDirectory, new SpawnStdio.AppendToFile(LogPath(outputPath)), SpawnGroup.NewSession);
        }
        catch (Win32Exception e)
        {
            throw new VmmLaunchException(executable, $"the console keeper could not be started: {e.Message}", e);
        }
        using (child)
        {
            var identity = new ProcessIdentity(child.Pid, ProcFs.TryGetStartTime(child.Pid) ?? 0, VmmProcess.ResolveFinalTarget(executable));
            if (!NamesProcess(ready, child.Pid))
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var first = await Task.WhenAny(appeared.Task, child.WaitStatus, Task.Delay(ReadyTimeout, time, deadline.Token)).ConfigureAwait(false);
                await deadline.CancelAsync().ConfigureAwait(false);
                if (!NamesProcess(ready, child.Pid))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (first != child.WaitStatus)
                        child.PidFd?.TrySignal(LibC.SIGKILL);
                    var log = File.Exists(LogPath(outputPath)) ? (await File.ReadAllTextAsync(LogPath(outputPath), CancellationToken.None).ConfigureAwait(false)).Trim() : "";
                    throw new VmmLaunchException(executable, first == child.WaitStatus
                        ? $"the console keeper ended before it was ready (wait status {child.WaitStatus.Result}): {log}"
                        : $"the console keeper was not ready within {ReadyTimeout.TotalSeconds} s: {log}");
                }
            }
            return identity;
        }
    }

    /// <summary>Whether the keeper recorded as <paramref name="keeper"/> still runs (a reused PID does not count).</summary>
    public static bool IsRunning(ProcessIdentity keeper)
    {
        ArgumentNullException.ThrowIfNull(keeper);
        return ProcFs.IsSameProcess(keeper);
    }

    /// <summary>
    /// Waits until the keeper has ended (it does once its VMM has and its output is drained), and SIGKILLs it through
    /// a pidfd when it is still there after <paramref name="grace"/>. Returns at once when it is gone already.
    /// </summary>
    public static async Task WaitGoneAsync(ProcessIdentity keeper, TimeSpan grace, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keeper);
        ArgumentNullException.ThrowIfNull(timeProvider);
        using var pidFd = PidFd.TryOpen(keeper.Pid);
        // Checked after the pidfd is open: it pins the process, so a match cannot turn into a reused PID.
        if (pidFd is null || !ProcFs.IsSameProcess(keeper))
            return;
        try
        {
            await pidFd.WaitForExitAsync(cancellationToken).WaitAsync(grace, timeProvider, cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (TimeoutException)
        {
            // Still there after its VMM ended: it is stuck, and nothing it holds is worth more than leaving no process.
        }
        pidFd.TrySignal(LibC.SIGKILL);
        await pidFd.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Connects to the keeper of the console written to <paramref name="outputPath"/>: the stream carries the console's
    /// output from now on, and what is written to it goes to the guest's serial input. Null when no keeper serves it.
    /// </summary>
    public static async Task<Stream?> ConnectAsync(string outputPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        if (!File.Exists(ReadyPath(outputPath)))
            return null;
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath(outputPath)), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }

    /// <summary>Whether the ready file is there and holds <paramref name="pid"/> (the keeper writes it whole, then renames it).</summary>
    private static bool NamesProcess(string readyPath, int pid)
    {
        try
        {
            return int.TryParse(File.ReadAllText(readyPath), NumberStyles.None, CultureInfo.InvariantCulture, out var named) && named == pid;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

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

    /// <summary>Completes <see cref="Task"/> when a file appears at a path (created, or renamed into place).</summary>
    private sealed class WatchedFile : IDisposable
    {
        private readonly FileSystemWatcher _watcher;

        public WatchedFile(string path)
        {
            var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task = source.Task;
            var full = Path.GetFullPath(path);
            _watcher = new FileSystemWatcher(Path.GetDirectoryName(full)!, Path.GetFileName(full)) { NotifyFilter = NotifyFilters.FileName };
            _watcher.Created += (_, _) => source.TrySetResult();
            _watcher.Renamed += (_, _) => source.TrySetResult();
            _watcher.EnableRaisingEvents = true;
        }

        public Task Task { get; }

        public void Dispose() => _watcher.Dispose();
    }

    /// <summary>What a keeper is told on its command line.</summary>
    private sealed record KeeperArguments(ProcessIdentity Vmm, string Fifo, string Output, OutputRotation Rotation, string? Input, string Socket)
    {
        public List<string> ToList()
        {
            var list = new List<string>
            {
                "--vmm-pid", Vmm.Pid.ToString(CultureInfo.InvariantCulture),
                "--vmm-start", Vmm.StartTimeTicks.ToString(CultureInfo.InvariantCulture),
                "--vmm-exe", Vmm.ExecutablePath ?? "",
                "--fifo", Fifo,
                "--output", Output,
                "--max-bytes", Rotation.MaxFileBytes.ToString(CultureInfo.InvariantCulture),
                "--files", Rotation.Files.ToString(CultureInfo.InvariantCulture),
                "--socket", Socket,
            };
            if (Input is not null)
                list.AddRange(["--input", Input]);
            return list;
        }

        public static KeeperArguments Parse(IReadOnlyList<string> arguments)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < arguments.Count; i += 2)
            {
                if (!arguments[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= arguments.Count)
                    throw new FormatException($"expected '--name value' pairs, got '{arguments[i]}'");
                values[arguments[i][2..]] = arguments[i + 1];
            }
            string Required(string name) => values.TryGetValue(name, out var v) && v.Length > 0 ? v : throw new FormatException($"--{name} is required");
            long Number(string name) => long.TryParse(Required(name), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
                ? n : throw new FormatException($"--{name} is not a number");
            var rotation = new OutputRotation(Number("max-bytes"), (int)Number("files"));
            try
            {
                rotation.Validate();
            }
            catch (ArgumentException e)
            {
                throw new FormatException(e.Message);
            }
            var exe = values.GetValueOrDefault("vmm-exe");
            return new KeeperArguments(new ProcessIdentity((int)Number("vmm-pid"), (ulong)Number("vmm-start"), exe is { Length: > 0 } ? exe : null),
                Required("fifo"), Required("output"), rotation, values.GetValueOrDefault("input"), Required("socket"));
        }
    }

    /// <summary>One keeper's run: from the FIFO to the log and the attach clients, until the VMM has ended.</summary>
    private sealed class Keeper(KeeperArguments arguments)
    {
        private readonly Lock _clientsGate = new();
        private readonly List<Socket> _clients = [];

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            using var vmm = PidFd.TryOpen(arguments.Vmm.Pid);
            var vmmLives = vmm is not null && ProcFs.IsSameProcess(arguments.Vmm);
            var fd = OpenForBlockingReads(arguments.Fifo);
            using var fifo = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
            await using var writer = new RotatingFileWriter(arguments.Output, arguments.Rotation);
            using var listener = Listen(arguments.Socket);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var accepting = AcceptAsync(listener, stop.Token);
            await File.WriteAllTextAsync(ReadyPath(arguments.Output) + ".tmp", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
            File.Move(ReadyPath(arguments.Output) + ".tmp", ReadyPath(arguments.Output), overwrite: true);

            // Reads block one dedicated thread: end of file comes when the last writer (the VMM) has closed the FIFO.
            var pump = Task.Factory.StartNew(() => Pump(fifo, writer), CancellationToken.None,
                TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
            if (vmmLives)
            {
                var vmmExit = vmm!.WaitForExitAsync(stop.Token);
                await Task.WhenAny(pump, vmmExit).ConfigureAwait(false);
            }
            try
            {
                // The VMM has ended (or its output did): what it wrote last is in the FIFO still.
                await pump.WaitAsync(DrainTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Another writer holds the FIFO open (it was never the VMM's alone): the VMM is gone, so stop here.
            }
            await stop.CancelAsync().ConfigureAwait(false);
            listener.Dispose();
            await accepting.ConfigureAwait(false);
            lock (_clientsGate)
            {
                foreach (var client in _clients)
                    client.Dispose();
                _clients.Clear();
            }
            DeleteQuietly(arguments.Socket);
            DeleteQuietly(arguments.Fifo);
            DeleteQuietly(ReadyPath(arguments.Output));
        }

        private unsafe void Pump(Microsoft.Win32.SafeHandles.SafeFileHandle fifo, RotatingFileWriter writer)
        {
            var buffer = new byte[64 * 1024];
            var fd = (int)fifo.DangerousGetHandle();
            while (true)
            {
                nint n;
                fixed (byte* p = buffer)
                    n = LibC.Read(fd, p, (nuint)buffer.Length);
                if (n == 0)
                    return;
                if (n < 0)
                {
                    if (LibC.LastErrno == LibC.EINTR)
                        continue;
                    throw new Win32Exception(LibC.LastErrno, $"read({arguments.Fifo}) failed");
                }
                var chunk = buffer.AsSpan(0, (int)n);
                try
                {
                    writer.Write(chunk);
                }
                catch (IOException)
                {
                    // A full disk loses the log, never the pump: the FIFO must keep draining or the guest's output stops.
                }
                Broadcast(chunk);
            }
        }

        private void Broadcast(ReadOnlySpan<byte> chunk)
        {
            lock (_clientsGate)
            {
                for (var i = _clients.Count - 1; i >= 0; i--)
                {
                    try
                    {
                        _clients[i].Send(chunk);
                    }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException)
                    {
                        // A client that cannot keep up (its send timed out) or left is dropped; the log has it all.
                        _clients[i].Dispose();
                        _clients.RemoveAt(i);
                    }
                }
            }
        }

        private async Task AcceptAsync(Socket listener, CancellationToken cancellationToken)
        {
            var inputs = new List<Task>();
            try
            {
                while (!cancellationToken.IsCancellationRequested)
                {
                    var client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    client.SendTimeout = 1000;
                    lock (_clientsGate)
                        _clients.Add(client);
                    inputs.Add(ForwardInputAsync(client, cancellationToken));
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // The keeper is ending.
            }
            await Task.WhenAll(inputs).ConfigureAwait(false);
        }

        /// <summary>What an attach client sends goes to the VMM's serial input FIFO, as it comes.</summary>
        private async Task ForwardInputAsync(Socket client, CancellationToken cancellationToken)
        {
            if (arguments.Input is not { } input)
                return;
            try
            {
                // Read-write, as the VMM holds it: opening never waits for a reader.
                await using var serial = new FileStream(input, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
                var buffer = new byte[4096];
                int n;
                while ((n = await client.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    await serial.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    await serial.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
            {
                // The client left, or the keeper is ending.
            }
        }

        private static Socket Listen(string path)
        {
            UnixSocketPathCheck(path);
            DeleteQuietly(path);
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(8);
            return socket;
        }

        private static void UnixSocketPathCheck(string path) => Kiln.Api.UnixSocketPath.Validate(path, "socket");

        /// <summary>
        /// Opens the FIFO without waiting for a writer (non-blocking), then makes its reads blocking: a read waits for
        /// output, and returns end of file once the VMM (its only writer) has closed it.
        /// </summary>
        private static int OpenForBlockingReads(string path)
        {
            var fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
            if (fd < 0)
                throw new Win32Exception(LibC.LastErrno, $"open({path}) failed");
            var flags = LibC.Fcntl(fd, LibC.F_GETFL, 0);
            if (flags < 0 || LibC.Fcntl(fd, LibC.F_SETFL, flags & ~LibC.O_NONBLOCK) < 0)
            {
                var errno = LibC.LastErrno;
                LibC.Close(fd);
                throw new Win32Exception(errno, $"fcntl({path}) failed");
            }
            return fd;
        }

        private static void DeleteQuietly(string path)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort: the sandbox directory's removal takes what is left.
            }
        }
    }
}
