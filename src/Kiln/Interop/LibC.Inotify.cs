// inotify(7), for FileCreationWatcher: one descriptor for the whole process, read by one thread.
using System.Runtime.InteropServices;

namespace Kiln.Interop;

internal static partial class LibC
{
    public const int IN_CLOEXEC = 0x80000;

    public const uint IN_CREATE = 0x00000100;
    public const uint IN_MOVED_TO = 0x00000080;
    public const uint IN_DELETE_SELF = 0x00000400;
    public const uint IN_MOVE_SELF = 0x00000800;
    public const uint IN_UNMOUNT = 0x00002000;
    public const uint IN_Q_OVERFLOW = 0x00004000;
    public const uint IN_IGNORED = 0x00008000;
    public const uint IN_ONLYDIR = 0x01000000;

    /// <summary>The fixed part of <c>struct inotify_event</c>; <see cref="NameLength"/> bytes of NUL-padded name follow.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct InotifyEvent
    {
        public int Wd;
        public uint Mask;
        public uint Cookie;
        public uint NameLength;
    }

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    public static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "inotify_rm_watch", SetLastError = true)]
    public static partial int InotifyRmWatch(int fd, int wd);
}
