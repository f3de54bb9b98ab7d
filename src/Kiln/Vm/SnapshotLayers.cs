// Layering a diff snapshot on its base. Firecracker writes a Diff snapshot's memory file as large as guest memory,
// with only the pages dirtied since tracking began (the restore with track_dirty_pages, or the last snapshot) written
// and the rest left as holes. So a full memory file for the diff's state file is: a copy of the base memory file (the
// one the VM was restored from, itself possibly layered) with every written region of the diff copied over it at
// the same offset. The regions are found with lseek(SEEK_DATA/SEEK_HOLE): the holes are never read. This needs a file
// system that keeps holes (ext4, xfs, btrfs, tmpfs); on one that does not, a diff reads as all data and must not be
// layered this way.
using Kiln.Interop;

namespace Kiln.Vm;

/// <summary>Lays diff snapshots' memory files over their base.</summary>
public static class SnapshotLayers
{
    /// <summary>
    /// Copies every written region of <paramref name="diffMemoryPath"/> into <paramref name="targetMemoryPath"/> (a copy
    /// of the base memory file, changed in place) at the same offset; returns how many bytes were copied.
    /// </summary>
    /// <exception cref="IOException">The files differ in size (not a diff of this base), or a read or write failed.</exception>
    public static async Task<long> ApplyDiffAsync(string diffMemoryPath, string targetMemoryPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(diffMemoryPath);
        ArgumentException.ThrowIfNullOrEmpty(targetMemoryPath);
        await using var diff = new FileStream(diffMemoryPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        await using var target = new FileStream(targetMemoryPath, FileMode.Open, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        if (diff.Length != target.Length)
            throw new IOException($"{diffMemoryPath} is {diff.Length} bytes and {targetMemoryPath} {target.Length}: a diff is as large as the guest memory of its base.");
        var fd = (int)diff.SafeFileHandle.DangerousGetHandle();
        var buffer = new byte[1024 * 1024];
        long copied = 0;
        var offset = 0L;
        while (offset < diff.Length)
        {
            var start = LibC.LSeek(fd, offset, LibC.SEEK_DATA);
            if (start < 0)
            {
                if (LibC.LastErrno == LibC.ENXIO)
                    break; // no data after offset
                throw new IOException($"lseek(SEEK_DATA) on {diffMemoryPath} failed: errno {LibC.LastErrno}");
            }
            var end = LibC.LSeek(fd, start, LibC.SEEK_HOLE);
            if (end < 0)
                throw new IOException($"lseek(SEEK_HOLE) on {diffMemoryPath} failed: errno {LibC.LastErrno}");
            for (var position = start; position < end;)
            {
                var length = (int)Math.Min(buffer.Length, end - position);
                var read = await RandomAccess.ReadAsync(diff.SafeFileHandle, buffer.AsMemory(0, length), position, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                    throw new IOException($"{diffMemoryPath} ended at {position} inside a data region");
                await RandomAccess.WriteAsync(target.SafeFileHandle, buffer.AsMemory(0, read), position, cancellationToken).ConfigureAwait(false);
                position += read;
                copied += read;
            }
            offset = end;
        }
        return copied;
    }
}
