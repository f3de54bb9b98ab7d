// The native calls fake-jailer makes: the same system calls Firecracker's jailer makes (mknod, chown, setns,
// setrlimit, setsid, unshare, mount, pivot_root, setgid/setuid, execve), each returning 0 or the errno.
using System.Runtime.InteropServices;

namespace Kiln.FakeFirecracker.Interop;

internal static unsafe partial class JailNativeMethods
{
    public const int CLONE_NEWNS = 0x00020000;
    public const int CLONE_NEWPID = 0x20000000;
    public const int CLONE_NEWNET = 0x40000000;
    public const ulong MS_RDONLY = 0x1;
    public const ulong MS_NOSUID = 0x2;
    public const ulong MS_NODEV = 0x4;
    public const ulong MS_NOEXEC = 0x8;
    public const ulong MS_REMOUNT = 0x20;
    public const ulong MS_BIND = 0x1000;
    public const ulong MS_REC = 0x4000;
    public const ulong MS_SLAVE = 0x80000;
    public const int MNT_DETACH = 2;
    public const int RLIMIT_FSIZE = 1;
    public const int RLIMIT_NOFILE = 7;
    private const uint S_IFCHR = 0x2000;
    private const long SYS_pivot_root = 155;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mknod(string path, uint mode, ulong dev);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chown(string path, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, RLimit* limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup2(int oldFd, int newFd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string? source, string target, string? fsType, ulong flags, IntPtr data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chdir(string path);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long syscall(long number, string a, string b);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setgid(uint gid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setuid(uint uid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setgroups(nuint size, uint* list);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int execve(byte* path, byte** argv, byte** envp);

    private static int Check(long rc) => rc < 0 ? Marshal.GetLastPInvokeError() : 0;

    private static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    /// <summary>A character device node, owner read/write only (S_IRUSR | S_IWUSR), as the jailer makes them.</summary>
    public static int MknodChar(string path, uint major, uint minor) => Check(mknod(path, S_IFCHR | 0x180, MakeDev(major, minor)));

    public static int Chown(string path, uint uid, uint gid) => Check(chown(path, uid, gid));

    public static int LChown(string path, uint uid, uint gid) => Check(lchown(path, uid, gid));

    /// <summary>Joins the network namespace the file names (for the calling thread, and what it execs or forks).</summary>
    public static int JoinNetNs(int fd) => Check(setns(fd, CLONE_NEWNET));

    public static int Unshare(int flags) => Check(unshare(flags));

    public static int SetRLimit(int resource, ulong value)
    {
        var limit = new RLimit { Current = value, Max = value };
        return Check(setrlimit(resource, &limit));
    }

    public static int SetSid() => Check(setsid());

    public static int Dup2(int oldFd, int newFd) => Check(dup2(oldFd, newFd));

    public static int Mount(string? source, string target, string? fsType, ulong flags) => Check(mount(source, target, fsType, flags, IntPtr.Zero));

    public static int UmountDetach(string target) => Check(umount2(target, MNT_DETACH));

    public static int Chdir(string path) => Check(chdir(path));

    public static int PivotRoot(string newRoot, string putOld) => Check(syscall(SYS_pivot_root, newRoot, putOld));

    /// <summary>Drops to the jail's group and user (no supplementary groups), group first while still allowed.</summary>
    public static int DropTo(uint uid, uint gid)
    {
        var rc = Check(setgroups(0, null));
        if (rc == 0)
            rc = Check(setgid(gid));
        if (rc == 0)
            rc = Check(setuid(uid));
        return rc;
    }

    /// <summary>Replaces the process image; returns only on failure, with the errno.</summary>
    public static int Execve(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp)
    {
        var strings = new List<IntPtr>();
        try
        {
            var pathPtr = Marshal.StringToCoTaskMemUTF8(path);
            strings.Add(pathPtr);
            var argvPtrs = new IntPtr[argv.Count + 1];
            for (var i = 0; i < argv.Count; i++)
                strings.Add(argvPtrs[i] = Marshal.StringToCoTaskMemUTF8(argv[i]));
            var envPtrs = new IntPtr[envp.Count + 1];
            for (var i = 0; i < envp.Count; i++)
                strings.Add(envPtrs[i] = Marshal.StringToCoTaskMemUTF8(envp[i]));
            fixed (IntPtr* a = argvPtrs)
            fixed (IntPtr* e = envPtrs)
            {
                _ = execve((byte*)pathPtr, (byte**)a, (byte**)e);
                return Marshal.GetLastPInvokeError();
            }
        }
        finally
        {
            foreach (var p in strings)
                Marshal.FreeCoTaskMem(p);
        }
    }
}
