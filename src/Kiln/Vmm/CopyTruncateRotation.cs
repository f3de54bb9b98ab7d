// The bound on a detached VMM's console log. Its stdout is the file itself (opened O_APPEND by the spawn), so no
// process of ours sits between the VMM and the file to rotate it as RotatingFileWriter does for an owned one. The
// file is rotated from outside instead, as logrotate's copytruncate does: older files shift (PATH.1 → PATH.2, …),
// PATH is copied to PATH.1 to its current end, then truncated; the VMM's next append lands at offset 0. Bytes the
// VMM appends between the copy's last read and the truncation are lost (a window of one system call), and a
// FileFollower sees the truncation and starts again at the beginning.
namespace Kiln.Vmm;

/// <summary>Rotates a file another process appends to, once it has reached its size limit.</summary>
public static class CopyTruncateRotation
{
    /// <summary>
    /// When <paramref name="path"/> holds at least <see cref="OutputRotation.MaxFileBytes"/>, rotates it (keeping
    /// <see cref="OutputRotation.Files"/> files, the current one included) and returns true; otherwise false.
    /// </summary>
    /// <exception cref="IOException">The file could not be read, copied or truncated.</exception>
    public static bool RotateIfFull(string path, OutputRotation rotation)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(rotation);
        rotation.Validate();
        FileStream source;
        try
        {
            source = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
        using (source)
        {
            if (source.Length < rotation.MaxFileBytes)
                return false;
            if (rotation.Files > 1)
            {
                for (var i = rotation.Files - 1; i >= 2; i--)
                {
                    var from = $"{path}.{i - 1}";
                    if (File.Exists(from))
                        File.Move(from, $"{path}.{i}", overwrite: true);
                }
                using var copy = new FileStream($"{path}.1", FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
                // To the end as it is while copying: what the VMM appends meanwhile is copied too.
                source.CopyTo(copy);
            }
            source.SetLength(0);
            return true;
        }
    }
}
