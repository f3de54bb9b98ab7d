// The file-system calls .NET does not offer: hard links, ownership, bind mounts, FIFOs, statx(2) (a file's type, owner,
// device and inode), and whether a uid/gid exists. statx is used rather than stat because its struct has one layout on
// every architecture (struct stat differs between x86_64 and aarch64).
using System.Runtime.InteropServices;

namespace Kiln.Interop;

internal static unsafe partial class LibC
{
    public const int EXDEV = 18;
    public const int ENOENT = 2;
    public const int ENOTDIR = 20;
    public const int EEXIST = 17;
    public const ulong MS_RDONLY = 0x1;
    public const ulong MS_REMOUNT = 0x20;
    public const ulong MS_BIND = 0x1000;
    public const int MNT_DETACH = 2;

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Link(string existing, string newPath);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int LChown(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Chmod(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string? source, string target, string? fsType, ulong flags, IntPtr data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    public const int AT_FDCWD = -100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_MODE = 0x2;
    public const uint STATX_UID = 0x8;
    public const uint STATX_GID = 0x10;
    public const uint STATX_INO = 0x100;
    public const int S_IFMT = 0xF000;
    public const int S_IFIFO = 0x1000;

    /// <summary>The size of struct statx (include/uapi/linux/stat.h); its fields are read at <see cref="StatxOffset"/>.</summary>
    public const int StatxSize = 256;

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MkFifo(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "getpwuid")]
    private static partial IntPtr GetPwUid(uint uid);

    [LibraryImport("libc", EntryPoint = "getgrgid")]
    private static partial IntPtr GetGrGid(uint gid);

    /// <summary>Offsets of the struct statx fields Kiln reads.</summary>
    public static class StatxOffset
    {
        public const int Uid = 20;
        public const int Gid = 24;
        public const int Mode = 28;
        public const int Inode = 32;
        public const int DevMajor = 136;
        public const int DevMinor = 140;
    }

    /// <summary>A path's device (major in the high half, minor in the low), mode, owner and group, following links
    /// as stat(2) does; null when it cannot be read.</summary>
    public static (ulong Device, uint Mode, uint Uid, uint Gid)? Stat(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Statx(AT_FDCWD, path, 0, STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID, buffer) != 0)
            return null;
        var device = ((ulong)*(uint*)(buffer + StatxOffset.DevMajor) << 32) | *(uint*)(buffer + StatxOffset.DevMinor);
        return (device, *(ushort*)(buffer + StatxOffset.Mode), *(uint*)(buffer + StatxOffset.Uid), *(uint*)(buffer + StatxOffset.Gid));
    }

    /// <summary>Whether the user database knows this uid (getpwuid(3)).</summary>
    public static bool UserExists(uint uid) => GetPwUid(uid) != IntPtr.Zero;

    /// <summary>Whether the group database knows this gid (getgrgid(3)).</summary>
    public static bool GroupExists(uint gid) => GetGrGid(gid) != IntPtr.Zero;
}
