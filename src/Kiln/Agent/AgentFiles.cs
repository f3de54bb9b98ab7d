// File operations in the guest. Contents stream in 64 KiB frames both ways, so files of any size pass through a
// fixed buffer; a write lands atomically (the agent renames a completed temporary file into place).
using Kiln.Agent.Protocol;

namespace Kiln.Agent;

/// <summary>Files in the guest, through its agent. Paths are absolute guest paths.</summary>
public sealed class AgentFiles
{
    private readonly AgentConnector _connector;

    internal AgentFiles(AgentConnector connector) => _connector = connector;

    /// <summary>Writes <paramref name="content"/> to <paramref name="path"/> (replacing it) with permission bits <paramref name="mode"/> (0644 when null).</summary>
    /// <exception cref="AgentOperationException">The agent could not write it (missing directory, permission, …).</exception>
    public async Task WriteAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken, UnixFileMode? mode = null)
    {
        using var stream = new MemoryStream(content.ToArray(), writable: false);
        await WriteAsync(path, stream, cancellationToken, mode).ConfigureAwait(false);
    }

    /// <summary>Streams <paramref name="content"/> to <paramref name="path"/> (replacing it) with permission bits <paramref name="mode"/> (0644 when null).</summary>
    /// <exception cref="AgentOperationException">The agent could not write it.</exception>
    public async Task WriteAsync(string path, Stream content, CancellationToken cancellationToken, UnixFileMode? mode = null)
    {
        ArgumentNullException.ThrowIfNull(content);
        var request = new FileWriteRequest(CheckPath(path), (int)(mode ?? (UnixFileMode)0b110_100_100));
        var payload = Messages.Encode(FrameType.FileWrite, request, AgentJsonContext.Default.FileWriteRequest);
        await using var connection = await AgentConnection.OpenAsync(_connector, FrameType.FileWrite, payload, cancellationToken).ConfigureAwait(false);
        var buffer = new byte[FrameLimits.MaxChunk];
        try
        {
            int n;
            while ((n = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                await connection.Writer.WriteAsync(FrameType.Data, buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            await connection.Writer.WriteAsync(FrameType.Data, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The agent may have refused the write and closed: its Error frame says why.
        }

        await connection.ExpectAsync(FrameType.Ok, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Streams the file at <paramref name="path"/> into <paramref name="destination"/>.</summary>
    /// <returns>The file's description as the agent opened it.</returns>
    /// <exception cref="AgentOperationException">The agent could not read it (<c>not-found</c>, …).</exception>
    public async Task<AgentFileInfo> ReadAsync(string path, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var payload = Messages.Encode(FrameType.FileRead, new PathRequest(CheckPath(path)), AgentJsonContext.Default.PathRequest);
        await using var connection = await AgentConnection.OpenAsync(_connector, FrameType.FileRead, payload, cancellationToken).ConfigureAwait(false);
        var info = ToInfo(Messages.Decode(await connection.ReadAsync(cancellationToken).ConfigureAwait(false), FrameType.FileInfo, AgentJsonContext.Default.FileInfoMessage));
        while (true)
        {
            var frame = await connection.ExpectAsync(FrameType.Data, cancellationToken).ConfigureAwait(false);
            if (frame.IsEndOfStream)
                return info;
            await destination.WriteAsync(frame.Payload, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the whole file at <paramref name="path"/> into memory.</summary>
    public async Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await ReadAsync(path, buffer, cancellationToken).ConfigureAwait(false);
        return buffer.ToArray();
    }

    /// <summary>Describes <paramref name="path"/> (a symlink itself, not its target).</summary>
    /// <exception cref="AgentOperationException"><c>not-found</c> when nothing is there.</exception>
    public async Task<AgentFileInfo> StatAsync(string path, CancellationToken cancellationToken)
    {
        var payload = Messages.Encode(FrameType.FileStat, new PathRequest(CheckPath(path)), AgentJsonContext.Default.PathRequest);
        await using var connection = await AgentConnection.OpenAsync(_connector, FrameType.FileStat, payload, cancellationToken).ConfigureAwait(false);
        return ToInfo(Messages.Decode(await connection.ReadAsync(cancellationToken).ConfigureAwait(false), FrameType.FileInfo, AgentJsonContext.Default.FileInfoMessage));
    }

    /// <summary>The entries of the directory at <paramref name="path"/>.</summary>
    public async Task<IReadOnlyList<AgentFileInfo>> ListAsync(string path, CancellationToken cancellationToken)
    {
        var payload = Messages.Encode(FrameType.FileList, new PathRequest(CheckPath(path)), AgentJsonContext.Default.PathRequest);
        await using var connection = await AgentConnection.OpenAsync(_connector, FrameType.FileList, payload, cancellationToken).ConfigureAwait(false);
        var entries = new List<AgentFileInfo>();
        while (true)
        {
            var frame = await connection.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (frame.Type == FrameType.Ok)
                return entries;
            entries.Add(ToInfo(Messages.Decode(frame, FrameType.FileInfo, AgentJsonContext.Default.FileInfoMessage)));
        }
    }

    /// <summary>Removes <paramref name="path"/>; a non-empty directory only with <paramref name="recursive"/>.</summary>
    public async Task RemoveAsync(string path, CancellationToken cancellationToken, bool recursive = false)
    {
        var payload = Messages.Encode(FrameType.FileRemove, new FileRemoveRequest(CheckPath(path), recursive), AgentJsonContext.Default.FileRemoveRequest);
        await using var connection = await AgentConnection.OpenAsync(_connector, FrameType.FileRemove, payload, cancellationToken).ConfigureAwait(false);
        await connection.ExpectAsync(FrameType.Ok, cancellationToken).ConfigureAwait(false);
    }

    private static string CheckPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (path[0] != '/')
            throw new ArgumentException($"'{path}' is not an absolute guest path.", nameof(path));
        return path;
    }

    private static AgentFileInfo ToInfo(FileInfoMessage m) => new(
        m.Path,
        m.Kind switch { "directory" => AgentFileKind.Directory, "symlink" => AgentFileKind.Symlink, _ => AgentFileKind.File },
        m.Size,
        (UnixFileMode)m.Mode,
        DateTimeOffset.FromUnixTimeMilliseconds(m.ModifiedUnixMs));
}
