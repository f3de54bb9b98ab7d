// The file-system calls the jail needs that .NET does not offer: hard links, ownership, bind mounts, stat's device
// and owner, and whether a uid/gid exists.
using System.Runtime.InteropServices;

namespace Kiln.Interop;

internal static unsafe partial class LibC
{
    public const int EXDEV = 18;
    public const int ENOENT = 2;
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

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatRaw(string path, byte* buffer);

    [LibraryImport("libc", EntryPoint = "getpwuid")]
    private static partial IntPtr GetPwUid(uint uid);

    [LibraryImport("libc", EntryPoint = "getgrgid")]
    private static partial IntPtr GetGrGid(uint gid);

    /// <summary>stat(2)'s device, mode, owner and group. x86_64's struct stat: dev 0, mode 24, uid 28, gid 32;
    /// aarch64's (the generic one): dev 0, mode 16, uid 24, gid 28.</summary>
    public static (ulong Device, uint Mode, uint Uid, uint Gid)? Stat(string path)
    {
        var buffer = stackalloc byte[256];
        if (StatRaw(path, buffer) != 0)
            return null;
        return RuntimeInformation.ProcessArchitecture == Architecture.X64
            ? (*(ulong*)buffer, *(uint*)(buffer + 24), *(uint*)(buffer + 28), *(uint*)(buffer + 32))
            : (*(ulong*)buffer, *(uint*)(buffer + 16), *(uint*)(buffer + 24), *(uint*)(buffer + 28));
    }

    /// <summary>Whether the user database knows this uid (getpwuid(3)).</summary>
    public static bool UserExists(uint uid) => GetPwUid(uid) != IntPtr.Zero;

    /// <summary>Whether the group database knows this gid (getgrgid(3)).</summary>
    public static bool GroupExists(uint gid) => GetGrGid(gid) != IntPtr.Zero;
}
