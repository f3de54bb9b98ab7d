// Every native call Kiln makes, in one place: signals, pidfds and the sandbox lock. Source-generated ([LibraryImport]) so it stays
// AOT- and trim-clean; errno is captured through SetLastError and read with Marshal.GetLastPInvokeError.
using System.Runtime.InteropServices;

namespace Kiln.Interop;

/// <summary>libc entry points (Linux).</summary>
internal static partial class LibC
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    public const int ESRCH = 3;
    public const int EINTR = 4;
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
