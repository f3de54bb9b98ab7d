// Copies for clones: a reflink (FICLONE, copy-on-write: instant and no extra space until either side writes) where
// the file system can (btrfs, XFS with reflink, bcachefs), else an ordinary byte copy.
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
            // EOPNOTSUPP, EXDEV, EINVAL: no reflink here; copy the bytes.
            await from.CopyToAsync(to, 1024 * 1024, cancellationToken).ConfigureAwait(false);
            return CopyMethod.Copy;
        }
        catch
        {
            await to.DisposeAsync().ConfigureAwait(false);
            File.Delete(destination);
            throw;
        }
    }
}
