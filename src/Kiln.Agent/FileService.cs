// File operations on the guest's filesystem. Contents travel as Data frames of at most MaxChunk bytes, so a file of
// any size moves through a fixed buffer; a write goes to a temporary name beside the target and is renamed into place
// only once the client has sent the end of the stream, so a broken transfer never leaves a truncated file behind.
using Kiln.Agent.Protocol;

namespace Kiln.GuestAgent;

internal sealed class FileService
{
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;

    public FileService(FrameReader reader, FrameWriter writer)
    {
        _reader = reader;
        _writer = writer;
    }

    public async Task WriteAsync(FileWriteRequest request, CancellationToken cancellationToken)
    {
        var path = CheckPath(request.Path);
        if (request.Mode is < 0 or > 0xFFF)
            throw new ArgumentException("mode must be permission bits (0 to 07777).");

        var temp = request.Append ? path : Path.Combine(Path.GetDirectoryName(path) ?? "/", $".{Path.GetFileName(path)}.kiln-{Guid.NewGuid():N}");
        var options = new FileStreamOptions
        {
            Mode = request.Append ? FileMode.Append : FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = (UnixFileMode)request.Mode,
            BufferSize = 0,
        };
        var complete = false;
        try
        {
            await using (var file = new FileStream(temp, options))
            {
                while (true)
                {
                    var frame = await _reader.ReadRequiredAsync(cancellationToken);
                    if (frame.Type != FrameType.Data)
                        throw Messages.Unexpected(frame, FrameType.Data);
                    if (frame.IsEndOfStream)
                        break;
                    await file.WriteAsync(frame.Payload, cancellationToken);
                }

                file.Flush(flushToDisk: true);
            }

            if (!request.Append)
            {
                File.SetUnixFileMode(temp, (UnixFileMode)request.Mode);
                File.Move(temp, path, overwrite: true);
            }

            complete = true;
        }
        finally
        {
            if (!complete && !request.Append)
                TryDelete(temp);
        }

        await _writer.WriteAsync(FrameType.Ok, cancellationToken);
    }

    public async Task ReadAsync(PathRequest request, CancellationToken cancellationToken)
    {
        var path = CheckPath(request.Path);
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        await _writer.WriteMessageAsync(FrameType.FileInfo, Describe(path), AgentJsonContext.Default.FileInfoMessage, cancellationToken);
        var buffer = new byte[FrameLimits.MaxChunk];
        while (true)
        {
            var n = await file.ReadAsync(buffer, cancellationToken);
            if (n == 0)
                break;
            await _writer.WriteAsync(FrameType.Data, buffer.AsMemory(0, n), cancellationToken);
        }

        await _writer.WriteAsync(FrameType.Data, cancellationToken);
    }

    public async Task StatAsync(PathRequest request, CancellationToken cancellationToken)
    {
        var path = CheckPath(request.Path);
        await _writer.WriteMessageAsync(FrameType.FileInfo, Describe(path), AgentJsonContext.Default.FileInfoMessage, cancellationToken);
    }

    public async Task ListAsync(PathRequest request, CancellationToken cancellationToken)
    {
        var path = CheckPath(request.Path);
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"{path}: not a directory");
        foreach (var entry in Directory.EnumerateFileSystemEntries(path))
        {
            FileInfoMessage info;
            try
            {
                info = Describe(entry);
            }
            catch (FileNotFoundException)
            {
                continue; // removed while we listed
            }

            await _writer.WriteMessageAsync(FrameType.FileInfo, info, AgentJsonContext.Default.FileInfoMessage, cancellationToken);
        }

        await _writer.WriteAsync(FrameType.Ok, cancellationToken);
    }

    public async Task RemoveAsync(FileRemoveRequest request, CancellationToken cancellationToken)
    {
        var path = CheckPath(request.Path);
        var info = new FileInfo(path);
        if (info.LinkTarget is null && Directory.Exists(path))
            Directory.Delete(path, request.Recursive);
        else if (info.Exists || info.LinkTarget is not null)
            File.Delete(path);
        else
            throw new FileNotFoundException($"{path}: no such file or directory");
        await _writer.WriteAsync(FrameType.Ok, cancellationToken);
    }

    internal static FileInfoMessage Describe(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null)
            return new FileInfoMessage(path, "symlink", 0, (int)info.UnixFileMode, info.LastWriteTimeUtc.ToUnixTimeMs());
        if (info.Exists)
            return new FileInfoMessage(path, "file", info.Length, (int)info.UnixFileMode, info.LastWriteTimeUtc.ToUnixTimeMs());
        var dir = new DirectoryInfo(path);
        if (dir.Exists)
            return new FileInfoMessage(path, "directory", 0, (int)dir.UnixFileMode, dir.LastWriteTimeUtc.ToUnixTimeMs());
        throw new FileNotFoundException($"{path}: no such file or directory");
    }

    // Paths are absolute: the agent has no meaningful working directory to resolve them against.
    private static string CheckPath(string path)
    {
        if (string.IsNullOrEmpty(path) || path[0] != '/' || path.Contains('\0', StringComparison.Ordinal))
            throw new ArgumentException($"'{path}' is not an absolute path.");
        return path;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the temporary file is named so that it is recognisable.
        }
    }
}

internal static class DateTimeExtensions
{
    public static long ToUnixTimeMs(this DateTime utc) => new DateTimeOffset(utc, TimeSpan.Zero).ToUnixTimeMilliseconds();
}
