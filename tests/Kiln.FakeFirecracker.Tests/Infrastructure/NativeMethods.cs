// The tests' only native calls: spawning the stand-in ourselves, because Process reports a death by signal N as
// exit code 128+N, and the tests must tell "killed by SIGTERM" from "exited 143" as Firecracker's parent would.
using System.Runtime.InteropServices;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

internal static unsafe partial class NativeMethods
{
    public const int SIGHUP = 1;
    public const int SIGINT = 2;
    public const int SIGABRT = 6;
    public const int SIGKILL = 9;
    public const int SIGPIPE = 13;
    public const int SIGTERM = 15;
    private const int O_RDONLY = 0;
    private const int O_CLOEXEC = 0x80000;
    private const short POSIX_SPAWN_SETSIGDEF = 0x04;
    private const short POSIX_SPAWN_SETSIGMASK = 0x08;
    private const int P_PID = 1;
    private const int WEXITED = 4;
    private const int CLD_EXITED = 1;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int pipe2(int* fds, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int sig);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(IntPtr actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(IntPtr actions, int fd, int newfd);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn_file_actions_addopen(IntPtr actions, int fd, string path, int flags, int mode);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(IntPtr actions);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(IntPtr attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(IntPtr attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(IntPtr attr, short flags);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigdefault(IntPtr attr, IntPtr sigset);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigmask(IntPtr attr, IntPtr sigset);

    [LibraryImport("libc")]
    private static partial int sigemptyset(IntPtr set);

    [LibraryImport("libc")]
    private static partial int sigaddset(IntPtr set, int signo);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn(out int pid, string path, IntPtr actions, IntPtr attr, IntPtr* argv, IntPtr* envp);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitid(int idtype, int id, byte* infop, int options);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    /// <summary>Starts <paramref name="path"/> with stdout and stderr on one pipe; returns the pid and the pipe's read end.</summary>
    public static (int Pid, int OutputFd) Spawn(string path, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env)
    {
        var fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
        {
            throw new InvalidOperationException($"pipe2 failed: errno {Marshal.GetLastPInvokeError()}");
        }

        var actions = Marshal.AllocHGlobal(256);
        var attr = Marshal.AllocHGlobal(512);
        var sigdef = Marshal.AllocHGlobal(128);
        var sigmask = Marshal.AllocHGlobal(128);
        var strings = new List<IntPtr>();
        try
        {
            _ = posix_spawn_file_actions_init(actions);
            _ = posix_spawn_file_actions_addopen(actions, 0, "/dev/null", O_RDONLY, 0);
            _ = posix_spawn_file_actions_adddup2(actions, fds[1], 1);
            _ = posix_spawn_file_actions_adddup2(actions, fds[1], 2);
            _ = posix_spawnattr_init(attr);
            _ = sigemptyset(sigmask);
            _ = sigemptyset(sigdef);
            foreach (var s in new[] { SIGINT, SIGTERM, SIGPIPE, SIGABRT })
            {
                _ = sigaddset(sigdef, s);
            }

            _ = posix_spawnattr_setsigdefault(attr, sigdef);
            _ = posix_spawnattr_setsigmask(attr, sigmask);
            _ = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

            var argv = new IntPtr[args.Count + 2];
            argv[0] = Utf8(path, strings);
            for (var i = 0; i < args.Count; i++)
            {
                argv[i + 1] = Utf8(args[i], strings);
            }

            var envList = env.Select(kv => Utf8($"{kv.Key}={kv.Value}", strings)).Append(IntPtr.Zero).ToArray();
            int pid;
            int rc;
            fixed (IntPtr* a = argv)
            fixed (IntPtr* e = envList)
            {
                rc = posix_spawn(out pid, path, actions, attr, a, e);
            }

            if (rc != 0)
            {
                throw new InvalidOperationException($"posix_spawn failed: errno {rc}");
            }

            return (pid, fds[0]);
        }
        finally
        {
            _ = close(fds[1]);
            _ = posix_spawn_file_actions_destroy(actions);
            _ = posix_spawnattr_destroy(attr);
            Marshal.FreeHGlobal(actions);
            Marshal.FreeHGlobal(attr);
            Marshal.FreeHGlobal(sigdef);
            Marshal.FreeHGlobal(sigmask);
            foreach (var s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }
        }
    }

    private static IntPtr Utf8(string s, List<IntPtr> keep)
    {
        var p = Marshal.StringToCoTaskMemUTF8(s);
        keep.Add(p);
        return p;
    }

    /// <summary>Blocks until the child ends; returns its exit code, or minus the signal that killed it.</summary>
    public static int WaitExit(int pid)
    {
        var info = stackalloc byte[128];
        while (true)
        {
            if (waitid(P_PID, pid, info, WEXITED) == 0)
            {
                var code = *(int*)(info + 8);
                var status = *(int*)(info + 24);
                return code == CLD_EXITED ? status : -status;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != 4)
            {
                throw new InvalidOperationException($"waitid failed: errno {errno}");
            }
        }
    }
}
