// `tail -F` for the serial console file, over the library's FileFollower (inotify plus a fallback tick, across the
// console's rotations); the fallback interval is also when we ask whether the VM is still alive: a regular file
// never reports end-of-stream.
using System.Text;
using Kiln.Vmm;

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

    /// <summary>Copies what the file holds; with <paramref name="stillRunning"/>, keeps following (across the
    /// console's rotations) until it says no or the token is cancelled (which ends the follow normally, not with an
    /// exception). The library's <see cref="FileFollower"/> does the reading, as for <c>SerialConsole</c>.</summary>
    public static async Task FollowAsync(
        string path, IConsoleSink sink, Func<CancellationToken, ValueTask<bool>>? stillRunning, TimeProvider time,
        CancellationToken cancellationToken, bool startAtEnd = false)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ended = stillRunning is null ? Task.CompletedTask : WatchAsync(stillRunning, time, stop.Token);
        var options = new FollowOptions
        {
            Follow = stillRunning is not null,
            Until = ended,
            TimeProvider = time,
            PollInterval = FallbackInterval,
            StartAtEnd = startAtEnd,
        };
        try
        {
            await foreach (var chunk in FileFollower.ReadChunksAsync(path, options, cancellationToken))
                sink.Write(chunk.Span);
            // The follow ended because the watch did: when the watch failed (a console keeper that could not be
            // restarted, say), that failure is the command's.
            await ended;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl-C ends a follow; it is not a failure.
        }
        finally
        {
            await stop.CancelAsync();
            sink.Complete();
        }
    }

    // Completes when the VM is no longer live (asked once per fallback interval).
    private static async Task WatchAsync(Func<CancellationToken, ValueTask<bool>> stillRunning, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            while (await stillRunning(cancellationToken))
                await Task.Delay(FallbackInterval, time, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The follow ended first.
        }
    }
}
