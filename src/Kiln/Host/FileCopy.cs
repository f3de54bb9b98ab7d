// Copies for clones: a reflink (FICLONE, copy-on-write: instant and no extra space until either side writes) where
// the file system can (btrfs, XFS with reflink, bcachefs), else a byte copy of the data regions that keeps the holes.
using Kiln.Interop;

namespace Kiln.Host;

/// <summary>How a file was copied.</summary>
public enum CopyMethod
{
    /// <summary>Copy-on-write: shares the source's blocks until either side writes.</summary>
    Reflink,

    /// <summary>A byte copy.</summary>
    Copy,
}

/// <summary>Copy-on-write file copies.</summary>
public static class FileCopy
{
    /// <summary>Copies <paramref name="source"/> to a new <paramref name="destination"/> (which must not exist).</summary>
    /// <exception cref="IOException">The destination exists, or the copy failed.</exception>
    public static async Task<CopyMethod> CloneOrCopyAsync(string source, string destination, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(source);
        ArgumentException.ThrowIfNullOrEmpty(destination);
        await using var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
        await using var to = new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        try
        {
            if (LibC.IoctlInt((int)to.SafeFileHandle.DangerousGetHandle(), LibC.FICLONE, (int)from.SafeFileHandle.DangerousGetHandle()) == 0)
                return CopyMethod.Reflink;
            // EOPNOTSUPP, EXDEV, EINVAL: no reflink here; copy the bytes, keeping the holes.
            await CopySparseAsync(from, to, cancellationToken).ConfigureAwait(false);
            return CopyMethod.Copy;
        }
        catch (Exception e)
        {
            await CleanupFailures.RunAsync(e, async () =>
            {
                await to.DisposeAsync().ConfigureAwait(false);
                File.Delete(destination);
            }).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Copies only the source's data regions (lseek SEEK_DATA/SEEK_HOLE), each to the same offset of a destination
    /// sized like the source: its holes stay holes (a drive image or a memory file is mostly holes, and a plain copy
    /// would allocate every one of them). A file system that cannot say where the holes are gets a plain copy.
    /// </summary>
    private static async Task CopySparseAsync(FileStream from, FileStream to, CancellationToken cancellationToken)
    {
        var length = from.Length;
        to.SetLength(length);
        var fd = (int)from.SafeFileHandle.DangerousGetHandle();
        var buffer = new byte[1024 * 1024];
        var offset = 0L;
        while (offset < length)
        {
            var start = LibC.LSeek(fd, offset, LibC.SEEK_DATA);
            if (start < 0)
            {
                var errno = LibC.LastErrno;
                if (errno == LibC.ENXIO)
                    return; // only a hole after offset
                if (offset == 0)
                {
                    // SEEK_DATA unsupported here: every byte is data.
                    await CopyRangeAsync(from, to, buffer, 0, length, cancellationToken).ConfigureAwait(false);
                    return;
                }
                throw new IOException($"lseek(SEEK_DATA) on {from.Name} failed: errno {errno}");
            }
            var end = LibC.LSeek(fd, start, LibC.SEEK_HOLE);
            if (end < 0)
                throw new IOException($"lseek(SEEK_HOLE) on {from.Name} failed: errno {LibC.LastErrno}");
            await CopyRangeAsync(from, to, buffer, start, Math.Min(end, length), cancellationToken).ConfigureAwait(false);
            offset = end;
        }
    }

    private static async Task CopyRangeAsync(FileStream from, FileStream to, byte[] buffer, long start, long end, CancellationToken cancellationToken)
    {
        for (var position = start; position < end;)
        {
            var count = (int)Math.Min(buffer.Length, end - position);
            var read = await RandomAccess.ReadAsync(from.SafeFileHandle, buffer.AsMemory(0, count), position, cancellationToken).ConfigureAwait(false);
            if (read == 0)
                throw new IOException($"{from.Name} ended at {position}, inside what it said was data");
            await RandomAccess.WriteAsync(to.SafeFileHandle, buffer.AsMemory(0, read), position, cancellationToken).ConfigureAwait(false);
            position += read;
        }
    }
}
