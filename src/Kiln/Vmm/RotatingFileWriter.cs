// The bounded on-disk log behind the serial console: writes go to PATH until it would pass the size limit, then
// PATH becomes PATH.1 (PATH.1 becomes PATH.2, …, the oldest is deleted) and writing starts over in a new PATH. A
// follower holding the old file reads it to its end before moving to the new one (FileFollower), so rotation loses
// no byte for a reader that keeps up; on disk at most MaxFileBytes × Files bytes remain.
namespace Kiln.Vmm;

/// <summary>How large the console log may grow: files of at most <paramref name="MaxFileBytes"/>, <paramref name="Files"/> of them.</summary>
/// <param name="MaxFileBytes">The size at which the current file is rotated.</param>
/// <param name="Files">How many files are kept, the current one included (at least 1; 1 means start over when full).</param>
public sealed record OutputRotation(long MaxFileBytes, int Files)
{
    /// <summary>8 MiB in each of 2 files: plenty for a boot log, bounded for a chatty guest.</summary>
    public static OutputRotation Default { get; } = new(8L * 1024 * 1024, 2);

    /// <summary>No bound: one file that only grows.</summary>
    public static OutputRotation Unbounded { get; } = new(long.MaxValue, 1);

    internal void Validate()
    {
        if (MaxFileBytes < 1024)
            throw new ArgumentOutOfRangeException(nameof(MaxFileBytes), MaxFileBytes, $"{nameof(MaxFileBytes)} must be at least 1024.");
        if (Files < 1)
            throw new ArgumentOutOfRangeException(nameof(Files), Files, $"{nameof(Files)} must be at least 1.");
    }
}

/// <summary>Appends to a file that rotates when it reaches its size limit. Thread-safe.</summary>
public sealed class RotatingFileWriter : IDisposable, IAsyncDisposable
{
    private string _path;
    private readonly OutputRotation _rotation;
    private readonly Lock _gate = new();
    private FileStream _file;

    /// <summary>Opens (appending to) <paramref name="path"/>.</summary>
    public RotatingFileWriter(string path, OutputRotation rotation)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(rotation);
        rotation.Validate();
        _path = path;
        _rotation = rotation;
        _file = Open(path);
    }

    /// <summary>The current file.</summary>
    public string Path => _path;

    /// <summary>The files that may exist, newest first: PATH, PATH.1, …</summary>
    public static IEnumerable<string> Files(string path, OutputRotation rotation)
    {
        ArgumentNullException.ThrowIfNull(rotation);
        yield return path;
        for (var i = 1; i < rotation.Files; i++)
            yield return $"{path}.{i}";
    }

    /// <summary>Appends and flushes (the file is read live); rotates first when the bytes would not fit.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            while (!bytes.IsEmpty)
            {
                var room = _rotation.MaxFileBytes - _file.Length;
                if (room <= 0)
                {
                    Rotate();
                    room = _rotation.MaxFileBytes;
                }
                var take = (int)Math.Min(room, bytes.Length);
                _file.Write(bytes[..take]);
                bytes = bytes[take..];
            }
            _file.Flush();
        }
    }

    private void Rotate()
    {
        _file.Dispose();
        if (_rotation.Files == 1)
        {
            File.Delete(_path);
        }
        else
        {
            for (var i = _rotation.Files - 1; i >= 1; i--)
            {
                var from = i == 1 ? _path : $"{_path}.{i - 1}";
                if (File.Exists(from))
                    File.Move(from, $"{_path}.{i}", overwrite: true);
            }
        }
        _file = Open(_path);
    }

    /// <summary>
    /// Continues in <paramref name="path"/> from now on: what the current file holds is appended to it (so a file
    /// already there keeps its lines) and the current file is removed. Used when a running VMM is handed to a new
    /// owner whose files live elsewhere (a cached VM given to a sandbox).
    /// </summary>
    public void MoveTo(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        lock (_gate)
        {
            if (path == _path)
                return;
            _file.Flush();
            var target = Open(path);
            try
            {
                using (var current = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                    current.CopyTo(target);
                target.Flush();
            }
            catch
            {
                target.Dispose();
                throw;
            }
            _file.Dispose();
            File.Delete(_path);
            _file = target;
            _path = path;
        }
    }

    private static FileStream Open(string path) =>
        new(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
            _file.Dispose();
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
