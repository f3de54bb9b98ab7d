// Making a host file visible inside a jail's chroot, and taking it away again. The method is chosen explicitly:
// - HardLink (default): one inode, no copy, no mount; needs the file on the chroot's file system. The inode's owner
//   becomes the jail's uid/gid (Firecracker opens it as that user), and a read-only file loses its write bits.
// - BindMount: works across file systems; the file is mounted over an empty one in the chroot, remounted read-only
//   for a read-only file. Kiln unmounts it at clean-up. Mounts made after the jailer started are only seen inside
//   when the host's mount is shared (mount propagation); hot-plug prefers the other two methods.
// - Copy: a private copy owned by the jail (read-only: mode 0400), always possible, costs the file's size.
using Kiln.Interop;

namespace Kiln.Host;

/// <summary>How a host file is made visible inside a chroot.</summary>
public enum JailFileExposure
{
    /// <summary>A hard link (same file system only).</summary>
    HardLink,

    /// <summary>A bind mount over an empty file (read-only remount for read-only files).</summary>
    BindMount,

    /// <summary>A private copy.</summary>
    Copy,
}

/// <summary>One host file made visible inside a chroot.</summary>
/// <param name="HostPath">The original file.</param>
/// <param name="PathInJail">Its path as the jailed process sees it (absolute, from the chroot's root).</param>
/// <param name="PathOnHost">Where that is on the host (under the chroot's root).</param>
/// <param name="Method">How it was made visible.</param>
/// <param name="ReadOnly">Whether it was exposed read-only.</param>
public sealed record ExposedFile(string HostPath, string PathInJail, string PathOnHost, JailFileExposure Method, bool ReadOnly);

/// <summary>Puts files into a chroot and takes them out.</summary>
public static class ChrootFiles
{
    /// <summary>Whether two paths are on the same file system (a hard link between them is possible).</summary>
    public static bool SameFileSystem(string a, string b) =>
        LibC.Stat(a) is { } sa && LibC.Stat(b) is { } sb && sa.Device == sb.Device;

    /// <summary>
    /// Makes <paramref name="hostPath"/> visible at <paramref name="pathInJail"/> inside the chroot whose root is
    /// <paramref name="chrootRoot"/>, owned by <paramref name="uid"/>:<paramref name="gid"/>.
    /// </summary>
    /// <exception cref="IOException">The file cannot be exposed that way (another file system for a hard link, …).</exception>
    public static ExposedFile Expose(string hostPath, string chrootRoot, string pathInJail, JailFileExposure method, bool readOnly, uint uid, uint gid) =>
        Expose(hostPath, chrootRoot, pathInJail, method, readOnly, uid, gid, keepOwner: false);

    private static ExposedFile Expose(string hostPath, string chrootRoot, string pathInJail, JailFileExposure method, bool readOnly, uint uid, uint gid, bool keepOwner)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostPath);
        CheckJailPath(pathInJail);
        var target = chrootRoot + pathInJail;
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        switch (method)
        {
            case JailFileExposure.HardLink:
                if (LibC.Link(hostPath, target) != 0)
                {
                    var errno = LibC.LastErrno;
                    throw new IOException(errno == LibC.EXDEV
                        ? $"cannot hard-link {hostPath} into {chrootRoot}: another file system (use bind mounts or copies)"
                        : $"cannot hard-link {hostPath} to {target}: errno {errno}");
                }
                Own(target, uid, gid);
                if (readOnly && LibC.Stat(target) is { } linked)
                    Chmod(target, linked.Mode & ~0x92u);
                break;
            case JailFileExposure.BindMount:
                using (File.Create(target))
                {
                }
                // The mount shows the source's inode: it, not the empty file beneath, must be the jail's (unless it is
                // shared and already readable by the jail: ExposeShared).
                if (!keepOwner)
                    Own(hostPath, uid, gid);
                if (LibC.Mount(hostPath, target, null, LibC.MS_BIND, IntPtr.Zero) != 0)
                {
                    var errno = LibC.LastErrno;
                    File.Delete(target);
                    throw new IOException($"cannot bind-mount {hostPath} on {target}: errno {errno}");
                }
                if (readOnly && LibC.Mount(null, target, null, LibC.MS_BIND | LibC.MS_REMOUNT | LibC.MS_RDONLY, IntPtr.Zero) != 0)
                {
                    var errno = LibC.LastErrno;
                    Withdraw(new ExposedFile(hostPath, pathInJail, target, method, readOnly));
                    throw new IOException($"cannot make the bind mount {target} read-only: errno {errno}");
                }
                break;
            case JailFileExposure.Copy:
                File.Copy(hostPath, target, overwrite: false);
                Own(target, uid, gid);
                Chmod(target, readOnly ? 0x100u : 0x180u);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, null);
        }
        return new ExposedFile(hostPath, pathInJail, target, method, readOnly);
    }

    /// <summary>
    /// Makes a file other VMMs use too (a template's state and memory files, a shared read-only drive) visible at
    /// <paramref name="pathInJail"/> read-only, without changing its owner or mode: the inode is not the jail's to take.
    /// A hard link when the jail's <paramref name="uid"/>/<paramref name="gid"/> may read it as it is and it is on the
    /// chroot's file system (one inode: clones mapping a memory file share its page-cache pages); else a read-only bind
    /// mount when the jail may read it (still one inode); else a private copy owned by the jail (mode 0400), which
    /// costs the file's size and shares no pages: <see cref="ExposedFile.Method"/> says which was made.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The file could not be exposed.</exception>
    public static ExposedFile ExposeShared(string hostPath, string chrootRoot, string pathInJail, uint uid, uint gid)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostPath);
        var stat = LibC.Stat(hostPath) ?? throw new FileNotFoundException($"{hostPath} does not exist", hostPath);
        if (!ReadableBy(stat.Mode, stat.Uid, stat.Gid, uid, gid))
            return Expose(hostPath, chrootRoot, pathInJail, JailFileExposure.Copy, readOnly: true, uid, gid);
        if (!SameFileSystem(hostPath, chrootRoot))
            return Expose(hostPath, chrootRoot, pathInJail, JailFileExposure.BindMount, readOnly: true, uid, gid, keepOwner: true);
        CheckJailPath(pathInJail);
        var target = chrootRoot + pathInJail;
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (LibC.Link(hostPath, target) != 0)
            throw new IOException($"cannot hard-link {hostPath} to {target}: errno {LibC.LastErrno}");
        return new ExposedFile(hostPath, pathInJail, target, JailFileExposure.HardLink, ReadOnly: true);
    }

    // The permission bits as the kernel applies them to a process of uid:gid (no supplementary groups: the jailer
    // drops them), for reading.
    private static bool ReadableBy(uint mode, uint ownerUid, uint ownerGid, uint uid, uint gid) =>
        ownerUid == uid ? (mode & 0x100) != 0 : ownerGid == gid ? (mode & 0x20) != 0 : (mode & 0x4) != 0;

    private static void CheckJailPath(string pathInJail)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathInJail);
        if (!pathInJail.StartsWith('/') || pathInJail.Split('/').Any(p => p is ".." or "."))
            throw new ArgumentException($"'{pathInJail}' must be an absolute path without . or .. parts", nameof(pathInJail));
    }

    /// <summary>Takes an exposed file out of the chroot (unmounting a bind mount first). Missing files are fine.</summary>
    public static void Withdraw(ExposedFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Method == JailFileExposure.BindMount && LibC.Umount2(file.PathOnHost, LibC.MNT_DETACH) != 0
            && LibC.LastErrno is not (LibC.EINVAL or LibC.ENOENT))
        {
            throw new IOException($"cannot unmount {file.PathOnHost}: errno {LibC.LastErrno}");
        }
        File.Delete(file.PathOnHost);
    }

    /// <summary>Unmounts every mount at or below <paramref name="directory"/> (deepest first), as this process sees them.</summary>
    public static void UnmountAllUnder(string directory)
    {
        var prefix = directory.TrimEnd('/') + "/";
        var mounts = File.ReadLines("/proc/self/mountinfo")
            .Select(l => Unescape(l.Split(' ')[4]))
            .Where(m => m == directory || m.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(m => m.Length)
            .ToList();
        foreach (var mount in mounts)
        {
            if (LibC.Umount2(mount, LibC.MNT_DETACH) != 0 && LibC.LastErrno is not (LibC.EINVAL or LibC.ENOENT))
                throw new IOException($"cannot unmount {mount}: errno {LibC.LastErrno}");
        }
    }

    // Permission bits only (0o7777).
    private static void Chmod(string path, uint mode)
    {
        if (LibC.Chmod(path, mode & 0xFFF) != 0)
            throw new IOException($"cannot chmod {path}: errno {LibC.LastErrno}");
    }

    private static void Own(string path, uint uid, uint gid)
    {
        if (LibC.LChown(path, uid, gid) != 0)
            throw new IOException($"cannot give {path} to {uid}:{gid}: errno {LibC.LastErrno}");
    }

    // mountinfo escapes space, tab, newline and backslash as octal.
    private static string Unescape(string s) =>
        s.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
