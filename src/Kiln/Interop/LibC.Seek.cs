// lseek(2) with SEEK_DATA/SEEK_HOLE, which .NET's FileStream does not offer: how a sparse file's written regions are
// found without reading its holes (a diff snapshot's memory file is mostly holes).
using System.Runtime.InteropServices;

namespace Kiln.Interop;

internal static partial class LibC
{
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;
    public const int ENXIO = 6;

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    public static partial long LSeek(int fd, long offset, int whence);
}
