// File helpers for fake-jailer: errno from .NET's I/O exceptions, and path canonicalisation as Rust's canonicalize.
using System.Runtime.InteropServices;

namespace Kiln.FakeFirecracker.Jailer;

internal static partial class JailerFiles
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr realpath(string path, IntPtr resolved);

    [LibraryImport("libc")]
    private static partial void free(IntPtr p);

    /// <summary>The errno behind an I/O exception, as far as .NET keeps it.</summary>
    public static int Errno(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => 2,
        UnauthorizedAccessException => 13,
        IOException io when (io.HResult & 0xFFFF) is > 0 and < 200 => io.HResult & 0xFFFF,
        _ => 5,
    };

    /// <summary>realpath(3): the absolute path with every symlink resolved, or the errno.</summary>
    public static string Canonicalize(string path, out int errno)
    {
        var p = realpath(path, IntPtr.Zero);
        if (p == IntPtr.Zero)
        {
            errno = Marshal.GetLastPInvokeError();
            return path;
        }

        errno = 0;
        try
        {
            return Marshal.PtrToStringUTF8(p)!;
        }
        finally
        {
            free(p);
        }
    }
}
