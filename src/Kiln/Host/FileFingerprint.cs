// "Has this file changed since?" cheaply: its size and a SHA-256 over its first, middle and last MiB. Not proof
// against a deliberate edit in an unsampled region, but catching the usual accidents (a rebuilt image, a truncated
// or replaced file) without reading gigabytes before every clone.
using System.Security.Cryptography;

namespace Kiln.Host;

/// <summary>A file's size and sampled checksum.</summary>
/// <param name="Path">The file.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="Checksum">SHA-256 (hex) of its size and its first, middle and last MiB.</param>
public sealed record FileFingerprint(string Path, long Size, string Checksum)
{
    private const int Sample = 1024 * 1024;

    /// <summary>Fingerprints <paramref name="path"/>.</summary>
    public static async Task<FileFingerprint> OfAsync(string path, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
        var size = file.Length;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(BitConverter.GetBytes(size));
        var buffer = new byte[Sample];
        foreach (var offset in new[] { 0L, Math.Max(0, size / 2 - Sample / 2), Math.Max(0, size - Sample) }.Distinct())
        {
            file.Position = offset;
            var read = await file.ReadAtLeastAsync(buffer, (int)Math.Min(Sample, size - offset), throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            hash.AppendData(buffer, 0, read);
        }
        return new FileFingerprint(path, size, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    /// <summary>Whether <see cref="Path"/> still has this size and checksum.</summary>
    public async Task<bool> MatchesAsync(CancellationToken cancellationToken = default)
    {
        if (!File.Exists(Path) || new FileInfo(Path).Length != Size)
            return false;
        return (await OfAsync(Path, cancellationToken).ConfigureAwait(false)).Checksum == Checksum;
    }
}
