namespace Kiln.FakeFirecracker.Tests.Infrastructure;

/// <summary>A short per-test directory under /tmp (Unix socket paths must stay under 108 bytes).</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine("/tmp", "kf-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    /// <summary>A sparse file of <paramref name="bytes"/> bytes.</summary>
    public string File(string name, long bytes = 4096)
    {
        var path = this[name];
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        fs.SetLength(bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A socket still bound by a dying child; the OS cleans /tmp.
        }
    }
}
