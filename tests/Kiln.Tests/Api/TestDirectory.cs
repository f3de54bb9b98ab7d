namespace Kiln.Tests.Api;

/// <summary>A fresh short directory under /tmp per test, so Unix socket paths stay far below 108 bytes.</summary>
internal sealed class TestDirectory : IDisposable
{
    public TestDirectory()
    {
        Path = System.IO.Path.Combine("/tmp", "kiln-api-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A socket still bound by a disposing server; /tmp is cleaned by the OS.
        }
    }
}
