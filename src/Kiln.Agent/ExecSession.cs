// One exec on one connection: spawn, pump stdout and stderr as separate ordered frame streams, feed stdin and
// signals from the client, enforce the timeout, and report how the process ended. The connection is the process's
// lifeline: when the client goes away (or cancels), the whole process group is killed.
using System.ComponentModel;
using Kiln.Agent;
using Kiln.Agent.Protocol;
using Kiln.GuestAgent.Interop;

namespace Kiln.GuestAgent;

internal sealed class ExecSession
{
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    // After the command exits, its output pipes may still be held open by processes it left behind; they get this
    // long to finish writing before the process group is killed so the exec can complete.
    private static readonly TimeSpan s_drainGrace = TimeSpan.FromSeconds(2);

    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly string _selfPath;

    public ExecSession(FrameReader reader, FrameWriter writer, string selfPath)
    {
        _reader = reader;
        _writer = writer;
        _selfPath = selfPath;
    }

    public async Task RunAsync(ExecRequest request, CancellationToken cancellationToken)
    {
        SpawnSpec spec;
        try
        {
            spec = Resolve(request, _selfPath);
        }
        catch (ArgumentException e)
        {
            await AgentServer.TryReportAsync(_writer, ErrorCodes.InvalidRequest, e.Message, cancellationToken);
            return;
        }
        catch (FileNotFoundException e)
        {
            await AgentServer.TryReportAsync(_writer, ErrorCodes.NotFound, e.Message, cancellationToken);
            return;
        }

        SpawnedProcess process;
        try
        {
            process = Spawner.Spawn(spec);
        }
        catch (Win32Exception e)
        {
            var code = e.NativeErrorCode == Native.ENOENT ? ErrorCodes.NotFound
                : e.NativeErrorCode == Native.EACCES ? ErrorCodes.PermissionDenied
                : ErrorCodes.ExecFailed;
            await AgentServer.TryReportAsync(_writer, code, e.Message, cancellationToken);
            return;
        }

        using (process)
        using (var output = new OutputReader())
        {
            await RunStartedAsync(request, process, output, cancellationToken);
        }
    }

    private async Task RunStartedAsync(ExecRequest request, SpawnedProcess process, OutputReader output, CancellationToken cancellationToken)
    {
        var pid = process.Pid;
        var exited = 0;

        // Signals go to the process group (the command's session), and only while its leader is unreaped: until then
        // its PID, which is also the group's id, cannot belong to anyone else.
        void SignalGroup(int signal)
        {
            if (Volatile.Read(ref exited) == 0)
                Native.Kill(-pid, signal);
        }

        var exit = Task.Factory.StartNew(() =>
        {
            var status = Spawner.Wait(pid);
            Volatile.Write(ref exited, 1);
            return status;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task stdout = Task.CompletedTask, stderr = Task.CompletedTask, input = Task.CompletedTask;
        var finished = false;
        try
        {
            await _writer.WriteMessageAsync(FrameType.ExecStarted, new ExecStartedMessage(pid), AgentJsonContext.Default.ExecStartedMessage, cancellationToken);
            if (!request.Stdin)
                process.Stdin.Dispose();

            stdout = Pump(output, process.Stdout, FrameType.Stdout, stop.Token);
            stderr = Pump(output, process.Stderr, FrameType.Stderr, stop.Token);
            input = ReadInputAsync(process, SignalGroup, stop.Token);

            var timedOut = false;
            var timeout = request.TimeoutMs is { } ms ? Task.Delay(TimeSpan.FromMilliseconds(ms), stop.Token) : Task.Delay(Timeout.Infinite, stop.Token);
            var first = await Task.WhenAny(exit, timeout, input);
            if (first == timeout && !exit.IsCompleted)
            {
                timedOut = true;
                SignalGroup(Native.SIGKILL);
            }
            else if (first == input && !exit.IsCompleted)
            {
                // The client left (or broke the protocol): nobody will read the output; the finally kills the command.
                return;
            }

            var (code, signal) = await exit;
            var pumps = Task.WhenAll(stdout, stderr);
            if (await Task.WhenAny(pumps, Task.Delay(s_drainGrace, cancellationToken)) != pumps)
            {
                // Leftover processes hold the pipes; the group's id may be reused now, so stop reading instead of signalling.
                output.Stop();
            }

            await pumps;
            await _writer.WriteMessageAsync(FrameType.Exit, new ExitMessage(code, signal, timedOut), AgentJsonContext.Default.ExitMessage, cancellationToken);
            finished = true;
        }
        finally
        {
            // However the exec ends — done, client gone, connection broken — nothing it started outlives it unreported.
            if (!finished)
                SignalGroup(Native.SIGKILL);
            await exit;
            output.Stop();
            await stop.CancelAsync();
            await Quietly(Task.WhenAll(stdout, stderr, input));
        }
    }

    // One thread per output stream: it blocks in poll/read and hands each chunk to the writer in order.
    private Task Pump(OutputReader output, Microsoft.Win32.SafeHandles.SafeFileHandle pipe, FrameType type, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() =>
        {
            var buffer = new byte[FrameLimits.MaxChunk];
            int n;
            while ((n = output.Read(pipe, buffer)) > 0)
                _writer.WriteAsync(type, buffer.AsMemory(0, n), cancellationToken).AsTask().GetAwaiter().GetResult();
            _writer.WriteAsync(type, cancellationToken).AsTask().GetAwaiter().GetResult();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    // Completes when the client closes the connection or breaks the protocol; stdin and signal frames are applied.
    private async Task ReadInputAsync(SpawnedProcess process, Action<int> signalGroup, CancellationToken cancellationToken)
    {
        try
        {
            while (await _reader.ReadAsync(cancellationToken) is { } frame)
            {
                switch (frame.Type)
                {
                    case FrameType.Stdin when frame.IsEndOfStream:
                        process.Stdin.Dispose();
                        break;
                    case FrameType.Stdin:
                        try
                        {
                            await process.Stdin.WriteAsync(frame.Payload, cancellationToken);
                        }
                        catch (Exception e) when (e is IOException or ObjectDisposedException)
                        {
                            // The command closed its stdin (EPIPE) or it was closed already: the bytes have nowhere to go.
                        }

                        break;
                    case FrameType.Signal:
                        var message = Messages.Decode(frame, FrameType.Signal, AgentJsonContext.Default.SignalMessage);
                        if (message.Signal is > 0 and < 65)
                            signalGroup(message.Signal);
                        break;
                    default:
                        throw Messages.Unexpected(frame, FrameType.Stdin);
                }
            }
        }
        catch (Exception e) when (e is AgentProtocolException or IOException)
        {
            // A broken connection ends the exec like a closed one.
        }
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The connection is gone; there is no one left to tell.
        }
    }

    /// <summary>Turns a request into a spawn: validated strings, the executable found on PATH, the user's shim.</summary>
    /// <exception cref="ArgumentException">A malformed request, naming the bad field.</exception>
    /// <exception cref="FileNotFoundException">The command is not on PATH.</exception>
    internal static SpawnSpec Resolve(ExecRequest request, string selfPath)
    {
        if (request.Argv is not { Count: > 0 } argv || string.IsNullOrEmpty(argv[0]))
            throw new ArgumentException("argv must name a command.");
        foreach (var arg in argv)
        {
            if (arg is null || arg.Contains('\0', StringComparison.Ordinal))
                throw new ArgumentException("argv holds a null or a NUL character.");
        }

        if (request.TimeoutMs is <= 0)
            throw new ArgumentException("timeoutMs must be positive.");

        var user = request.User is null ? null : UserSpec.Resolve(request.User);
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = DefaultPath,
            ["HOME"] = user?.Home ?? "/root",
        };
        foreach (var (key, value) in request.Env ?? new Dictionary<string, string>())
        {
            if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal) || value is null || value.Contains('\0', StringComparison.Ordinal))
                throw new ArgumentException($"env holds an invalid variable '{key}'.");
            env[key] = value;
        }

        if (request.WorkingDirectory is { } cwd && (cwd.Length == 0 || cwd.Contains('\0', StringComparison.Ordinal)))
            throw new ArgumentException("workingDirectory is empty or holds a NUL character.");

        var path = FindExecutable(argv[0], env["PATH"], request.WorkingDirectory);
        var envList = env.Select(kv => kv.Key + "=" + kv.Value).ToList();
        if (user is null)
            return new SpawnSpec(path, argv, envList, request.WorkingDirectory);

        // The shim drops to the user and execs the command in place: the PID the client sees is the command's.
        List<string> shim = [selfPath, "--exec-as", user.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture),
            user.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture), path, .. argv];
        return new SpawnSpec(selfPath, shim, envList, request.WorkingDirectory);
    }

    private static string FindExecutable(string command, string pathVariable, string? workingDirectory)
    {
        if (command.Contains('/', StringComparison.Ordinal))
            return command;
        foreach (var dir in pathVariable.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(Path.IsPathRooted(dir) || workingDirectory is null ? dir : Path.Combine(workingDirectory, dir), command);
            if (File.Exists(candidate))
                return candidate;
        }

        throw new FileNotFoundException($"{command}: command not found");
    }
}
