// Every native call Kiln makes, in one place: signals, pidfds, the sandbox lock and posix_spawn. Source-generated ([LibraryImport]) so it stays
// AOT- and trim-clean; errno is captured through SetLastError and read with Marshal.GetLastPInvokeError.
using System.Runtime.InteropServices;

namespace Kiln.Interop;

/// <summary>libc entry points (Linux).</summary>
internal static unsafe partial class LibC
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EINVAL = 22;
    public const int ENOSYS = 38;

    public const short POLLIN = 0x0001;

    // Syscall numbers of the "unified" table: the same on x86_64 and aarch64 (and every arch since Linux 5.1).
    private const long SYS_pidfd_send_signal = 424;
    private const long SYS_pidfd_open = 434;

    /// <summary>ioctl FICLONE (_IOW(0x94, 9, int)): make the destination share the source's extents (copy-on-write).</summary>
    public const ulong FICLONE = 0x40049409;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int IoctlInt(int fd, ulong request, int argument);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint GetEgid();

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    // syscall(2) is variadic; on the Linux ABIs .NET supports (x86_64, aarch64) integer varargs travel in the same
    // registers as fixed arguments, so a fixed-arity import is exact.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall2(long number, long a1, long a2);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall4(long number, long a1, long a2, long a3, long a4);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static unsafe partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static unsafe partial nint Read(int fd, void* buffer, nuint count);

    // fcntl(2) is variadic; an int argument travels as a fixed one would (see syscall above).
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    public const int EFD_CLOEXEC = 0x80000;

    public const int EAGAIN = 11;
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;

    // open(2) is variadic (the mode); without O_CREAT there is no third argument, and the fixed import is exact.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    /// <summary>pidfd_open(2): a file descriptor that refers to this very process, immune to PID reuse.</summary>
    public static int PidFdOpen(int pid) => (int)Syscall2(SYS_pidfd_open, pid, 0);

    /// <summary>pidfd_send_signal(2).</summary>
    public static int PidFdSendSignal(int pidfd, int signal) => (int)Syscall4(SYS_pidfd_send_signal, pidfd, signal, 0, 0);

    // posix_spawn(3) and what it needs. The attribute and file-action objects are opaque: glibc's are 336 and 80
    // bytes, musl's smaller; they are allocated at a size that holds either. The spawn functions return an error
    // number instead of setting errno.
    public const nuint OpaqueBytes = 1024;
    public const nuint SigSetBytes = 128;
    public const short POSIX_SPAWN_SETPGROUP = 0x02;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;
    public const int O_WRONLY = 1;

    /// <summary>Open for reading and writing.</summary>
    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_APPEND = 0x400;

    [LibraryImport("libc", EntryPoint = "posix_spawn")]
    public static unsafe partial int Spawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    public static unsafe partial int FileActionsInit(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    public static unsafe partial int FileActionsDestroy(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static unsafe partial int FileActionsAddDup2(void* actions, int fd, int newFd);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    public static unsafe partial int FileActionsAddOpen(void* actions, int fd, byte* path, int flags, uint mode);

    /// <summary>glibc 2.29+, musl 1.1.24+.</summary>
    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    public static unsafe partial int FileActionsAddChdir(void* actions, byte* path);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    public static unsafe partial int AttrInit(void* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    public static unsafe partial int AttrDestroy(void* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    public static unsafe partial int AttrSetFlags(void* attributes, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    public static unsafe partial int AttrSetSigMask(void* attributes, void* sigset);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    public static unsafe partial int AttrSetSigDefault(void* attributes, void* sigset);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    public static unsafe partial int SigEmptySet(void* sigset);

    [LibraryImport("libc", EntryPoint = "sigfillset")]
    public static unsafe partial int SigFillSet(void* sigset);

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    public static unsafe partial int Pipe2(int* fds, int flags);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    public static unsafe partial int WaitPid(int pid, int* status, int options);

    /// <summary>errno of the last call made through this class on this thread.</summary>
    public static int LastErrno => Marshal.GetLastPInvokeError();

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }
}
