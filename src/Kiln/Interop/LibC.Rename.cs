// rename(2) itself: .NET's File.Move falls back to copy-and-delete across file systems, which for a listening Unix
// socket would leave a dead file at the new path. A handed-over microVM's files must move as the same inodes or not at all.
using System.Runtime.InteropServices;

namespace Kiln.Interop;

internal static partial class LibC
{
    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rename(string oldPath, string newPath);

    /// <summary>Renames <paramref name="from"/> to <paramref name="to"/> (replacing it), never by a copy.</summary>
    /// <exception cref="IOException">rename(2) failed (another file system: EXDEV), with the errno's text.</exception>
    public static void RenameOrThrow(string from, string to)
    {
        if (Rename(from, to) != 0)
        {
            var errno = LastErrno;
            throw new IOException($"rename({from}, {to}) failed: {new System.ComponentModel.Win32Exception(errno).Message}", errno);
        }
    }
}
