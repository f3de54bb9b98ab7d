// Starts a command with posix_spawn: pipes for stdin/stdout/stderr, its own session (so a kill reaches everything it
// started), every signal back at its default (the .NET runtime ignores SIGPIPE, and ignored signals survive exec),
// an empty signal mask, the requested working directory and environment. Switching user is the one thing
// posix_spawn cannot do: the agent then spawns itself in its `--exec-as` shim mode, which drops privileges and execs.
using System.ComponentModel;
using Kiln.GuestAgent.Interop;
using Microsoft.Win32.SafeHandles;

namespace Kiln.GuestAgent;

/// <summary>A command to spawn, fully resolved.</summary>
internal sealed record SpawnSpec(string Path, IReadOnlyList<string> Argv, IReadOnlyList<string> Env, string? WorkingDirectory);

/// <summary>A spawned command: our ends of its three pipes and its PID (also its process group and session id).</summary>
internal sealed class SpawnedProcess : IDisposable
{
    public SpawnedProcess(int pid, FileStream stdin, SafeFileHandle stdout, SafeFileHandle stderr)
    {
        Pid = pid;
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
    }

    public int Pid { get; }

    public FileStream Stdin { get; }

    /// <summary>Read through <see cref="OutputReader"/>, which a stop can interrupt (a blocking read on a pipe cannot be).</summary>
    public SafeFileHandle Stdout { get; }

    public SafeFileHandle Stderr { get; }

    public void Dispose()
    {
        Stdin.Dispose();
        Stdout.Dispose();
        Stderr.Dispose();
    }
}

internal static unsafe class Spawner
{
    /// <summary>Spawns <paramref name="spec"/>.</summary>
    /// <exception cref="Win32Exception">posix_spawn failed; NativeErrorCode is the errno (ENOENT, EACCES, …).</exception>
    public static SpawnedProcess Spawn(SpawnSpec spec)
    {
        var fds = stackalloc int[6] { -1, -1, -1, -1, -1, -1 };
        var attr = stackalloc byte[Native.SpawnAttrSize];
        var actions = stackalloc byte[Native.FileActionsSize];
        var sigdef = stackalloc byte[Native.SigSetSize];
        var sigmask = stackalloc byte[Native.SigSetSize];
        using var strings = new NativeStrings();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                if (Native.Pipe2(fds + (2 * i), Native.O_CLOEXEC) != 0)
                    throw new Win32Exception(Native.LastErrno, "pipe2 failed");
            }

            // fds: [0]=stdin read (child), [1]=stdin write (us), [2]=stdout read (us), [3]=stdout write (child), [4]/[5] stderr.
            Check(Native.FileActionsInit(actions));
            Check(Native.SpawnAttrInit(attr));
            try
            {
                Check(Native.FileActionsAddDup2(actions, fds[0], 0));
                Check(Native.FileActionsAddDup2(actions, fds[3], 1));
                Check(Native.FileActionsAddDup2(actions, fds[5], 2));
                if (spec.WorkingDirectory is not null)
                    Check(Native.FileActionsAddChdir(actions, strings.String(spec.WorkingDirectory)));

                Check(Native.SigFillSet(sigdef));
                Check(Native.SigEmptySet(sigmask));
                Check(Native.SpawnAttrSetSigDefault(attr, sigdef));
                Check(Native.SpawnAttrSetSigMask(attr, sigmask));
                Check(Native.SpawnAttrSetFlags(attr, (short)(Native.POSIX_SPAWN_SETSIGDEF | Native.POSIX_SPAWN_SETSIGMASK | Native.POSIX_SPAWN_SETSID)));

                int pid;
                var rc = Native.PosixSpawn(&pid, strings.String(spec.Path), actions, attr, strings.Array(spec.Argv), strings.Array(spec.Env));
                if (rc != 0)
                    throw new Win32Exception(rc, $"{spec.Path}: {Native.ErrorText(rc)}");

                var process = new SpawnedProcess(pid, Stream(fds[1], FileAccess.Write), new SafeFileHandle(fds[2], ownsHandle: true), new SafeFileHandle(fds[4], ownsHandle: true));
                fds[1] = fds[2] = fds[4] = -1;
                return process;
            }
            finally
            {
                _ = Native.FileActionsDestroy(actions);
                _ = Native.SpawnAttrDestroy(attr);
            }
        }
        finally
        {
            for (var i = 0; i < 6; i++)
            {
                if (fds[i] >= 0)
                    _ = Native.Close(fds[i]);
            }
        }
    }

    /// <summary>Spawns a process that shares our stdin/stdout/stderr (the init's server); returns its PID.</summary>
    /// <exception cref="Win32Exception">posix_spawn failed.</exception>
    public static int SpawnInheriting(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env)
    {
        var attr = stackalloc byte[Native.SpawnAttrSize];
        var sigdef = stackalloc byte[Native.SigSetSize];
        var sigmask = stackalloc byte[Native.SigSetSize];
        using var strings = new NativeStrings();
        Check(Native.SpawnAttrInit(attr));
        try
        {
            Check(Native.SigFillSet(sigdef));
            Check(Native.SigEmptySet(sigmask));
            Check(Native.SpawnAttrSetSigDefault(attr, sigdef));
            Check(Native.SpawnAttrSetSigMask(attr, sigmask));
            Check(Native.SpawnAttrSetFlags(attr, (short)(Native.POSIX_SPAWN_SETSIGDEF | Native.POSIX_SPAWN_SETSIGMASK)));
            int pid;
            var rc = Native.PosixSpawn(&pid, strings.String(path), null, attr, strings.Array(argv), strings.Array(env));
            if (rc != 0)
                throw new Win32Exception(rc, $"{path}: {Native.ErrorText(rc)}");
            return pid;
        }
        finally
        {
            _ = Native.SpawnAttrDestroy(attr);
        }
    }

    /// <summary>Blocks until <paramref name="pid"/> (our child) exits; its exit code, or the signal that killed it.</summary>
    public static (int? ExitCode, int? Signal) Wait(int pid)
    {
        int status;
        while (Native.WaitPid(pid, &status, 0) < 0)
        {
            var errno = Native.LastErrno;
            if (errno != Native.EINTR)
                throw new Win32Exception(errno, $"waitpid({pid}) failed");
        }

        var termSig = status & 0x7F;
        return termSig == 0 ? ((status >> 8) & 0xFF, null) : (null, termSig);
    }

    private static FileStream Stream(int fd, FileAccess access) =>
        new(new SafeFileHandle(fd, ownsHandle: true), access, bufferSize: 0);

    private static void Check(int rc)
    {
        if (rc != 0)
            throw new Win32Exception(rc, "posix_spawn setup failed");
    }
}
