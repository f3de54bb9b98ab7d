// stat(2) for the jailer tests: owners, inodes and device numbers that .NET's file APIs do not expose (x86_64 layout).
using System.Runtime.InteropServices;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

internal static unsafe partial class NativeMethods
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int stat(string path, byte* buffer);

    private static byte[] Stat(string path)
    {
        var buffer = new byte[256];
        fixed (byte* p = buffer)
        {
            if (stat(path, p) != 0)
            {
                throw new IOException($"stat {path}: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        return buffer;
    }

    public static ulong Inode(string path) => BitConverter.ToUInt64(Stat(path), 8);

    public static (uint Uid, uint Gid) Owner(string path)
    {
        var s = Stat(path);
        return (BitConverter.ToUInt32(s, 28), BitConverter.ToUInt32(s, 32));
    }

    public static (uint Major, uint Minor) CharDevice(string path)
    {
        var rdev = BitConverter.ToUInt64(Stat(path), 40);
        var major = (uint)(((rdev >> 32) & 0xfffff000) | ((rdev >> 8) & 0xfff));
        var minor = (uint)(((rdev >> 12) & 0xffffff00) | (rdev & 0xff));
        return (major, minor);
    }
}
