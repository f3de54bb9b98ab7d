// `tail -f` for the serial console file. inotify (FileSystemWatcher) wakes the reader as soon as Firecracker writes;
// a periodic fallback tick still reads (inotify can drop events when its queue overflows, and some filesystems
// send none) and is when we ask whether the VM is still alive: a regular file never reports end-of-stream.
using System.Text;
using System.Threading.Channels;

namespace Kiln.Cli.Infrastructure;

/// <summary>Where console bytes go: raw to stdout, or one JSON object per line.</summary>
internal interface IConsoleSink
{
    void Write(ReadOnlySpan<byte> bytes);

    void Complete();
}

internal sealed class RawSink(Stream stream) : IConsoleSink
{
    public void Write(ReadOnlySpan<byte> bytes)
    {
        stream.Write(bytes);
        stream.Flush();
    }

    public void Complete() => stream.Flush();
}

internal sealed class JsonLineSink : IConsoleSink
{
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private readonly StringBuilder _line = new();

    public void Write(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[_decoder.GetCharCount(bytes, flush: false)];
        _decoder.GetChars(bytes, chars, flush: false);
        foreach (var c in chars)
        {
            if (c == '\n')
            {
                Emit();
            }
            else if (c != '\r')
            {
                _line.Append(c);
            }
        }
    }

    public void Complete()
    {
        if (_line.Length > 0)
            Emit();
    }

    private void Emit()
    {
        Output.WriteJsonLine(new LogLineJson(_line.ToString()));
        _line.Clear();
    }
}

internal static class ConsoleFollower
{
    public static readonly TimeSpan FallbackInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Copies what the file holds; with <paramref name="stillRunning"/>, keeps following until it says no
    /// or the token is cancelled (which ends the follow normally, not with an exception).</summary>
    public static async Task FollowAsync(
        string path, IConsoleSink sink, Func<CancellationToken, ValueTask<bool>>? stillRunning, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        using var watcher = CreateWatcher(path, wake.Writer);
        var buffer = new byte[64 * 1024];
        long position = 0;
        try
        {
            position = Drain(path, position, buffer, sink);
            if (stillRunning is null)
                return;
            var lastCheck = time.GetTimestamp();
            while (!cancellationToken.IsCancellationRequested)
            {
                using (var tick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    tick.CancelAfter(FallbackInterval);
                    try
                    {
                        await wake.Reader.ReadAsync(tick.Token);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        // The fallback tick: read anyway and look at the VM.
                    }
                }
                position = Drain(path, position, buffer, sink);
                if (time.GetElapsedTime(lastCheck) >= FallbackInterval)
                {
                    lastCheck = time.GetTimestamp();
                    if (!await stillRunning(cancellationToken))
                    {
                        // The VM is gone: whatever it wrote last is already in the file.
                        Drain(path, position, buffer, sink);
                        return;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl-C ends a follow; it is not a failure.
        }
        finally
        {
            sink.Complete();
        }
    }

    private static FileSystemWatcher? CreateWatcher(string path, ChannelWriter<bool> wake)
    {
        var directory = Path.GetDirectoryName(path);
        if (directory is null || !Directory.Exists(directory))
            return null;
        var watcher = new FileSystemWatcher(directory, Path.GetFileName(path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.FileName | NotifyFilters.CreationTime,
        };
        watcher.Changed += (_, _) => wake.TryWrite(true);
        watcher.Created += (_, _) => wake.TryWrite(true);
        watcher.Renamed += (_, _) => wake.TryWrite(true);
        watcher.EnableRaisingEvents = true;
        return watcher;
    }

    /// <summary>Reads from <paramref name="position"/> to the current end; a shorter file means it was truncated.</summary>
    private static long Drain(string path, long position, byte[] buffer, IConsoleSink sink)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        }
        catch (FileNotFoundException)
        {
            return position;
        }
        catch (DirectoryNotFoundException)
        {
            return position;
        }
        using (stream)
        {
            if (stream.Length < position)
                position = 0;
            stream.Position = position;
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                sink.Write(buffer.AsSpan(0, read));
                position += read;
            }
        }
        return position;
    }
}
