// Every native call the stand-in makes lives here, so the rest of the code stays managed and AOT-clean.
using System.Runtime.InteropServices;

namespace Kiln.FakeFirecracker.Interop;

internal static partial class NativeMethods
{
    public const int SIGABRT = 6;
    public const int SIGTERM = 15;
    private const int PR_SET_NAME = 15;
    public const int O_WRONLY = 0x1;
    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_APPEND = 0x400;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int O_RDONLY = 0;
    private static readonly IntPtr SIG_DFL = IntPtr.Zero;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, byte[] arg2, IntPtr arg3, IntPtr arg4, IntPtr arg5);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc")]
    private static partial int getpid();

    [LibraryImport("libc")]
    private static partial IntPtr signal(int signum, IntPtr handler);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, nuint request, byte* arg);

    // _IOW('T', 202, int): the request number of TUNSETIFF on every Linux architecture .NET runs on.
    private const nuint TUNSETIFF = 0x400454ca;
    private const short IFF_TAP = 0x0002;
    private const short IFF_NO_PI = 0x1000;
    private const short IFF_VNET_HDR = 0x4000;

    /// <summary>
    /// TUNSETIFF on an open <c>/dev/net/tun</c> fd, as Firecracker's <c>Tap::open_named</c>: attaches the fd to the TAP
    /// named <paramref name="name"/> (created when missing; EBUSY when another fd holds it). Returns 0 or the errno.
    /// </summary>
    public static unsafe int TunSetIff(int fd, string name)
    {
        // struct ifreq: 16 bytes of name, then the union whose first member is short ifru_flags; 40 bytes in all.
        var ifreq = stackalloc byte[40];
        new Span<byte>(ifreq, 40).Clear();
        System.Text.Encoding.UTF8.GetBytes(name, new Span<byte>(ifreq, 15));
        *(short*)(ifreq + 16) = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        return ioctl(fd, TUNSETIFF, ifreq) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Renames the calling thread as /proc/PID/task/TID/comm shows it (15 bytes at most).</summary>
    public static void SetCurrentThreadName(string name)
    {
        var bytes = new byte[16];
        var n = System.Text.Encoding.ASCII.GetBytes(name.AsSpan(0, Math.Min(15, name.Length)), bytes);
        bytes[n] = 0;
        _ = prctl(PR_SET_NAME, bytes, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero);
    }

    /// <summary>Dies by the signal with the default disposition, as an uncaught signal would.</summary>
    public static void DieBySignal(int sig)
    {
        _ = signal(sig, SIG_DFL);
        _ = kill(getpid(), sig);
        // The signal is delivered before kill returns for the calling thread in practice; if not, wait for it.
        Thread.Sleep(Timeout.Infinite);
    }

    /// <summary>Opens a file the way Rust's OpenOptions would, returning the fd or the errno as a negative number.</summary>
    public static int Open(string path, int flags, int mode = 0x1a4)
    {
        var fd = open(path, flags | O_CLOEXEC, mode);
        return fd >= 0 ? fd : -Marshal.GetLastPInvokeError();
    }

    public static void Close(int fd) => _ = close(fd);

    /// <summary>Writes all of <paramref name="data"/>; returns false when the fd would block or failed (a FIFO nobody reads).</summary>
    public static unsafe bool WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            nint done = 0;
            while (done < data.Length)
            {
                var n = write(fd, p + done, data.Length - done);
                if (n <= 0)
                {
                    return false;
                }

                done += n;
            }
        }

        return true;
    }

    /// <summary>The text Rust prints for an io::Error from errno: `No such file or directory (os error 2)`.</summary>
    public static string OsError(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (os error {errno})";
}
