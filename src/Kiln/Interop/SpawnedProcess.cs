// A child process started with posix_spawn(3) rather than System.Diagnostics.Process: it can be put in its own session
// or process group (POSIX_SPAWN_SETSID, POSIX_SPAWN_SETPGROUP) and have its stdio wired to pipes or a file in the one vfork-style clone, with no setsid(1) or
// /bin/sh exec in front of the program. Each such exec costs a dynamic-linker start and a trip through the scheduler,
// which on a loaded machine is milliseconds per start. The child is ours alone: .NET does not know it, so we reap it
// (ChildReaper; an unreaped child's PID cannot be reused, so the PID is safe until then) and its
// pidfd, opened at once, is the only way anything signals it.
using System.ComponentModel;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Interop;

/// <summary>Where a spawned child's stdin, stdout and stderr go.</summary>
internal abstract record SpawnStdio
{
    private SpawnStdio() { }

    /// <summary>
    /// stdin a pipe we hold the write end of (never written); stdout and stderr one pipe we read. One pipe for both:
    /// the reader sees them in the order the child wrote them, and one reader (one buffer) per child is enough.
    /// </summary>
    public sealed record Pipes : SpawnStdio;

    /// <summary>
    /// stdin from <paramref name="InputPath"/> opened read-write (a FIFO: no wait for a writer, no end-of-file when one
    /// leaves) or /dev/null; stdout and stderr appended straight to <paramref name="Path"/>.
    /// </summary>
    public sealed record AppendToFile(string Path, string? InputPath = null) : SpawnStdio;

    /// <summary>
    /// stdin as with <see cref="AppendToFile"/>; stdout and stderr the FIFO <paramref name="FifoPath"/>, opened
    /// read-write and non-blocking: the child is a reader of its own output, so no reader's death can end it with
    /// SIGPIPE or EPIPE, and a full FIFO (nobody reading) makes its writes fail with EAGAIN instead of blocking it
    /// (Firecracker then drops the serial bytes and counts them, CHANGELOG 0.24). The console keeper reads the FIFO.
    /// </summary>
    public sealed record ToFifo(string FifoPath, string? InputPath = null) : SpawnStdio;
}

/// <summary>Which process group and session a spawned child joins.</summary>
internal enum SpawnGroup
{
    /// <summary>A new session (and process group) of its own: it outlives ours (POSIX_SPAWN_SETSID).</summary>
    NewSession,

    /// <summary>A new process group in our session: out of reach of a terminal's Ctrl-C (POSIX_SPAWN_SETPGROUP).</summary>
    NewProcessGroup,
}

/// <summary>A child process started by <see cref="Start"/>.</summary>
internal sealed unsafe class SpawnedProcess : IDisposable
{
    private readonly Task<int> _waitStatus;

    private SpawnedProcess(int pid, PidFd? pidFd, SafePipeHandle? stdin, Task readers)
    {
        Pid = pid;
        PidFd = pidFd;
        StandardInput = stdin;
        Readers = readers;
        // With a pidfd, the one reaper thread of the process; without (kernel < 5.3), a thread of its own in waitpid.
        _waitStatus = (pidFd is null ? null : ChildReaper.TryWaitAsync(pid, pidFd))
            ?? Task.Factory.StartNew(() => ChildReaper.Reap(pid, 0) ?? -1, CancellationToken.None,
                TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
    }

    public int Pid { get; }

    /// <summary>The child's pidfd, opened while it could not yet have been reaped; null on kernels without pidfds.</summary>
    public PidFd? PidFd { get; }

    /// <summary>The write end of its stdin pipe (with <see cref="SpawnStdio.Pipes"/>): held, never written.</summary>
    public SafePipeHandle? StandardInput { get; }

    /// <summary>The reader of its output (with <see cref="SpawnStdio.Pipes"/>): done at end of output.</summary>
    public Task Readers { get; }

    /// <summary>The raw wait status once it has ended and been reaped; -1 when someone else reaped it.</summary>
    public Task<int> WaitStatus => _waitStatus;

    /// <summary>
    /// Starts <paramref name="argv"/>[0] (an absolute path) with the given environment, in the group or session asked,
    /// with every signal at its default disposition and none blocked (.NET ignores SIGPIPE, which would otherwise be
    /// inherited across exec). Call it on the thread whose exit a PR_SET_PDEATHSIG in the child should follow.
    /// With <see cref="SpawnStdio.Pipes"/>, <paramref name="attachReader"/> gets the child's output (stdout and stderr)
    /// before the child exists, so nothing it writes can find no reader.
    /// </summary>
    /// <exception cref="Win32Exception">posix_spawn failed (e.g. the program cannot be executed).</exception>
    public static SpawnedProcess Start(IReadOnlyList<string> argv, IEnumerable<KeyValuePair<string, string>> environment,
        string? workingDirectory, SpawnStdio stdio, SpawnGroup group, Func<Stream, Task>? attachReader = null)
    {
        ArgumentOutOfRangeException.ThrowIfZero(argv.Count);
        var envList = environment.Select(kv => $"{kv.Key}={kv.Value}").ToList();
        using var strings = new NativeStrings();
        var path = strings.Add(argv[0]);
        var argvPtr = strings.AddArray(argv);
        var envPtr = strings.AddArray(envList);

        var actions = NativeMemory.AllocZeroed(LibC.OpaqueBytes);
        var attributes = NativeMemory.AllocZeroed(LibC.OpaqueBytes);
        var sigset = NativeMemory.AllocZeroed(LibC.SigSetBytes);
        int[] childEnds = [];
        int stdinWrite = -1;
        Stream? output = null;
        var readers = Task.CompletedTask;
        var actionsReady = false;
        var attributesReady = false;
        try
        {
            Check(LibC.FileActionsInit(actions), "posix_spawn_file_actions_init");
            actionsReady = true;
            Check(LibC.AttrInit(attributes), "posix_spawnattr_init");
            attributesReady = true;

            short flags = LibC.POSIX_SPAWN_SETSIGDEF | LibC.POSIX_SPAWN_SETSIGMASK;
            // POSIX_SPAWN_SETPGROUP with the attribute's default group 0: the child's own PID becomes its group.
            flags |= group == SpawnGroup.NewSession ? LibC.POSIX_SPAWN_SETSID : LibC.POSIX_SPAWN_SETPGROUP;
            Check(LibC.AttrSetFlags(attributes, flags), "posix_spawnattr_setflags");
            Check(LibC.SigEmptySet(sigset) == 0 ? 0 : LibC.EINVAL, "sigemptyset");
            Check(LibC.AttrSetSigMask(attributes, sigset), "posix_spawnattr_setsigmask");
            Check(LibC.SigFillSet(sigset) == 0 ? 0 : LibC.EINVAL, "sigfillset");
            Check(LibC.AttrSetSigDefault(attributes, sigset), "posix_spawnattr_setsigdefault");

            switch (stdio)
            {
                case SpawnStdio.Pipes:
                    var (inRead, inWrite) = Pipe();
                    var (outRead, outWrite) = Pipe();
                    stdinWrite = inWrite;
                    childEnds = [inRead, outWrite];
                    output = ReadStream(outRead);
                    // dup2 onto 0-2 clears close-on-exec there; the originals close at exec (O_CLOEXEC).
                    Check(LibC.FileActionsAddDup2(actions, inRead, 0), "posix_spawn_file_actions_adddup2");
                    Check(LibC.FileActionsAddDup2(actions, outWrite, 1), "posix_spawn_file_actions_adddup2");
                    Check(LibC.FileActionsAddDup2(actions, outWrite, 2), "posix_spawn_file_actions_adddup2");
                    break;
                case SpawnStdio.ToFifo fifo:
                    Check(fifo.InputPath is null
                        ? LibC.FileActionsAddOpen(actions, 0, strings.Add("/dev/null"), LibC.O_RDONLY, 0)
                        : LibC.FileActionsAddOpen(actions, 0, strings.Add(fifo.InputPath), LibC.O_RDWR, 0), "posix_spawn_file_actions_addopen");
                    Check(LibC.FileActionsAddOpen(actions, 1, strings.Add(fifo.FifoPath), LibC.O_RDWR | LibC.O_NONBLOCK, 0), "posix_spawn_file_actions_addopen");
                    Check(LibC.FileActionsAddDup2(actions, 1, 2), "posix_spawn_file_actions_adddup2");
                    break;
                case SpawnStdio.AppendToFile file:
                    Check(file.InputPath is null
                        ? LibC.FileActionsAddOpen(actions, 0, strings.Add("/dev/null"), LibC.O_RDONLY, 0)
                        : LibC.FileActionsAddOpen(actions, 0, strings.Add(file.InputPath), LibC.O_RDWR, 0), "posix_spawn_file_actions_addopen");
                    Check(LibC.FileActionsAddOpen(actions, 1, strings.Add(file.Path),
                        LibC.O_WRONLY | LibC.O_APPEND | LibC.O_CREAT, 0x1A4 /* 0644 */), "posix_spawn_file_actions_addopen");
                    Check(LibC.FileActionsAddDup2(actions, 1, 2), "posix_spawn_file_actions_adddup2");
                    break;
            }
            if (workingDirectory is not null)
                Check(LibC.FileActionsAddChdir(actions, strings.Add(workingDirectory)), "posix_spawn_file_actions_addchdir_np");

            if (output is not null && attachReader is not null)
            {
                // The reader owns the stream from here: it ends (and closes it) at end of output, which comes when the
                // child's end closes, at its exit or, if the spawn fails, in the finally below.
                readers = attachReader(output);
                output = null;
            }
            int pid;
            var error = LibC.Spawn(&pid, path, actions, attributes, argvPtr, envPtr);
            if (error != 0)
                throw new Win32Exception(error, $"posix_spawn of {argv[0]} failed: {Marshal.GetPInvokeErrorMessage(error)}");
            // Ours and unreaped: the PID cannot have been reused, so this pidfd is this child's.
            var pidFd = PidFd.TryOpen(pid);
            var result = new SpawnedProcess(pid, pidFd, stdinWrite < 0 ? null : new SafePipeHandle(stdinWrite, ownsHandle: true), readers);
            stdinWrite = -1;
            return result;
        }
        finally
        {
            // The child's ends are the child's now (or, on failure, nobody's); ours close only on failure.
            foreach (var fd in childEnds)
                LibC.Close(fd);
            if (stdinWrite >= 0)
                LibC.Close(stdinWrite);
            output?.Dispose();
            if (actionsReady)
                _ = LibC.FileActionsDestroy(actions);
            if (attributesReady)
                _ = LibC.AttrDestroy(attributes);
            NativeMemory.Free(actions);
            NativeMemory.Free(attributes);
            NativeMemory.Free(sigset);
        }
    }

    /// <summary>Maps a wait status to (exit code, signal): exactly one is set; both null when it is unknown (-1).</summary>
    public static (int? ExitCode, int? Signal) Decode(int status) =>
        status < 0 ? (null, null)
        : (status & 0x7F) == 0 ? ((status >> 8) & 0xFF, null)
        : (null, status & 0x7F);

    private static AnonymousPipeClientStream ReadStream(int fd) => new AnonymousPipeClientStream(PipeDirection.In, new SafePipeHandle(fd, ownsHandle: true));

    private static (int Read, int Write) Pipe()
    {
        var fds = stackalloc int[2];
        if (LibC.Pipe2(fds, LibC.O_CLOEXEC) != 0)
            throw new Win32Exception(LibC.LastErrno, "pipe2 failed");
        return (fds[0], fds[1]);
    }

    private static void Check(int error, string call)
    {
        if (error != 0)
            throw new Win32Exception(error, $"{call} failed");
    }

    public void Dispose()
    {
        StandardInput?.Dispose();
        PidFd?.Dispose();
    }

    /// <summary>UTF-8 copies of managed strings (and NULL-terminated arrays of them) freed together.</summary>
    private sealed class NativeStrings : IDisposable
    {
        private readonly List<nint> _strings = [];
        private readonly List<nint> _arrays = [];

        public byte* Add(string text)
        {
            var p = Marshal.StringToCoTaskMemUTF8(text);
            _strings.Add(p);
            return (byte*)p;
        }

        public byte** AddArray(IReadOnlyList<string> items)
        {
            var array = (byte**)NativeMemory.AllocZeroed((nuint)(items.Count + 1), (nuint)sizeof(nint));
            _arrays.Add((nint)array);
            for (var i = 0; i < items.Count; i++)
                array[i] = Add(items[i]);
            return array;
        }

        public void Dispose()
        {
            foreach (var p in _strings)
                Marshal.FreeCoTaskMem(p);
            foreach (var p in _arrays)
                NativeMemory.Free((void*)p);
        }
    }
}
