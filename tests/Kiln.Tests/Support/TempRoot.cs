namespace Kiln.Tests.Support;

/// <summary>A short, private directory under /tmp (Unix socket paths must stay under 108 bytes).</summary>
public sealed class TempRoot : IDisposable
{
    public TempRoot()
    {
        Path = Directory.CreateTempSubdirectory("k").FullName;
        if (!Path.StartsWith("/tmp/", StringComparison.Ordinal))
            Path = Directory.CreateDirectory(System.IO.Path.Combine("/tmp", "k" + Guid.NewGuid().ToString("N")[..8])).FullName;
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Writes an executable shell script.</summary>
    public string Script(string name, string body)
    {
        var path = Combine(name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
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
        }
    }
}
