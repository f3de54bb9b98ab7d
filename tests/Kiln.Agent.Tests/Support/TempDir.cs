namespace Kiln.Agent.Tests.Support;

/// <summary>A short private directory under /tmp, one per test (Unix socket paths must stay under 108 bytes).</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateDirectory(System.IO.Path.Combine("/tmp", "ka" + Guid.NewGuid().ToString("N")[..10])).FullName;

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
