// Native calls about file-system nodes: making a FIFO, telling a FIFO from a file, and a file's identity (device and
// inode) so a follower notices when the path it reads from was rotated to a new file. statx(2) is used because its
// struct has one layout on every architecture (struct stat differs between x86_64 and aarch64).
using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Interop;

/// <summary>A file's identity: same device and inode means the same file, whatever its path is now.</summary>
internal readonly record struct FileNodeId(uint DevMajor, uint DevMinor, ulong Inode);

internal static unsafe partial class FileNodes
{
    private const int AT_FDCWD = -100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1;
    private const uint STATX_INO = 0x100;
    private const int S_IFMT = 0xF000;
    private const int S_IFIFO = 0x1000;
    private const int ENOENT = 2;
    private const int EEXIST = 17;

    // Offsets in struct statx (include/uapi/linux/stat.h): mode u16 @28, ino u64 @32, dev_major u32 @136, dev_minor @140.
    private const int StatxSize = 256;

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkFifo(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    /// <summary>Creates a FIFO (mode 0600); an existing FIFO at the path is fine.</summary>
    public static void CreateFifo(string path)
    {
        if (MkFifo(path, 0x180) == 0)
            return;
        var errno = Marshal.GetLastPInvokeError();
        if (errno == EEXIST && IsFifo(path))
            return;
        throw new Win32Exception(errno, $"mkfifo({path}) failed");
    }

    /// <summary>Whether the path names a FIFO (false when it is missing or anything else).</summary>
    public static bool IsFifo(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Statx(AT_FDCWD, path, 0, STATX_TYPE, buffer) != 0)
            return false;
        return (*(ushort*)(buffer + 28) & S_IFMT) == S_IFIFO;
    }

    /// <summary>The identity of the file at a path; null when there is none.</summary>
    public static FileNodeId? TryGetId(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Statx(AT_FDCWD, path, 0, STATX_INO, buffer) == 0)
            return Read(buffer);
        var errno = Marshal.GetLastPInvokeError();
        return errno is ENOENT or 20 /* ENOTDIR */ ? null : throw new Win32Exception(errno, $"statx({path}) failed");
    }

    /// <summary>The identity of an open file.</summary>
    public static FileNodeId GetId(SafeFileHandle handle)
    {
        var buffer = stackalloc byte[StatxSize];
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (Statx((int)handle.DangerousGetHandle(), "", AT_EMPTY_PATH, STATX_INO, buffer) != 0)
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "statx(fd) failed");
            return Read(buffer);
        }
        finally
        {
            if (added)
                handle.DangerousRelease();
        }
    }

    private static FileNodeId Read(byte* buffer) =>
        new(*(uint*)(buffer + 136), *(uint*)(buffer + 140), *(ulong*)(buffer + 32));
}
