// File-system nodes, over LibC's mkfifo(3) and statx(2): making a FIFO, telling a FIFO from a file, and a file's
// identity (device and inode) so a follower notices when the path it reads from was rotated to a new file.
using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Interop;

/// <summary>A file's identity: same device and inode means the same file, whatever its path is now.</summary>
internal readonly record struct FileNodeId(uint DevMajor, uint DevMinor, ulong Inode);

internal static unsafe class FileNodes
{
    /// <summary>Creates a FIFO (mode 0600); an existing FIFO at the path is fine.</summary>
    public static void CreateFifo(string path)
    {
        if (LibC.MkFifo(path, 0x180) == 0)
            return;
        var errno = Marshal.GetLastPInvokeError();
        if (errno == LibC.EEXIST && IsFifo(path))
            return;
        throw new Win32Exception(errno, $"mkfifo({path}) failed");
    }

    /// <summary>Whether the path names a FIFO (false when it is missing or anything else).</summary>
    public static bool IsFifo(string path)
    {
        var buffer = stackalloc byte[LibC.StatxSize];
        if (LibC.Statx(LibC.AT_FDCWD, path, 0, LibC.STATX_TYPE, buffer) != 0)
            return false;
        return (*(ushort*)(buffer + LibC.StatxOffset.Mode) & LibC.S_IFMT) == LibC.S_IFIFO;
    }

    /// <summary>
    /// Opens a FIFO read-write and gives the handle (null when the path is no FIFO). A pipe keeps what was written into
    /// it only while some process has it open: held, the lines a writer left stay readable after the writer is gone.
    /// </summary>
    public static SafeFileHandle? HoldFifo(string path)
    {
        if (!IsFifo(path))
            return null;
        var fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
            throw new IOException($"Cannot open the FIFO {path}: errno {Marshal.GetLastPInvokeError()}.");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The identity of the file at a path; null when there is none.</summary>
    public static FileNodeId? TryGetId(string path)
    {
        var buffer = stackalloc byte[LibC.StatxSize];
        if (LibC.Statx(LibC.AT_FDCWD, path, 0, LibC.STATX_INO, buffer) == 0)
            return Read(buffer);
        var errno = Marshal.GetLastPInvokeError();
        return errno is LibC.ENOENT or LibC.ENOTDIR ? null : throw new Win32Exception(errno, $"statx({path}) failed");
    }

    /// <summary>The identity of an open file.</summary>
    public static FileNodeId GetId(SafeFileHandle handle)
    {
        var buffer = stackalloc byte[LibC.StatxSize];
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (LibC.Statx((int)handle.DangerousGetHandle(), "", LibC.AT_EMPTY_PATH, LibC.STATX_INO, buffer) != 0)
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
        new(*(uint*)(buffer + LibC.StatxOffset.DevMajor), *(uint*)(buffer + LibC.StatxOffset.DevMinor), *(ulong*)(buffer + LibC.StatxOffset.Inode));
}
