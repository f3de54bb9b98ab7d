// `tail -F` for what Firecracker writes: its log and metrics (a FIFO or a regular file) and the guest's console.
// A FIFO is opened read-write, so it opens at once whether or not Firecracker has opened it yet and never reports
// end-of-file when a writer goes away; it is read through a pipe stream, whose reads wait on epoll and so can be
// cancelled. A regular file is read to its end, then again when inotify says it changed or a fallback tick fires;
// when the path names a new file (rotation), the old one is read to its end first, so no line is lost across it
// (a reader that falls more than one rotation behind skips the files in between: they are no longer at the path).
using System.IO.Pipes;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Kiln.Interop;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Vmm;

/// <summary>Reads the lines a process writes into a file or a FIFO, as they are written.</summary>
public static class FileFollower
{
    private const int ChunkBytes = 64 * 1024;

    /// <summary>
    /// The bytes written to <paramref name="path"/>, in the chunks they arrive in (for a terminal: a prompt without a
    /// newline shows at once). Each chunk is valid until the next one is asked for. Ends as
    /// <see cref="ReadLinesAsync"/> does.
    /// </summary>
    public static async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadChunksAsync(
        string path, FollowOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new FollowOptions();
        options.Validate();
        await using IChunkSource source = FileNodes.IsFifo(path) ? new FifoSource(path, options) : new RegularFileSource(path, options);
        var chunk = new byte[ChunkBytes];
        while (true)
        {
            var read = await source.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
            if (read == 0)
                yield break;
            yield return chunk.AsMemory(0, read);
        }
    }

    /// <summary>
    /// The lines of <paramref name="path"/> without their <c>\n</c> (a trailing <c>\r</c> is kept). Each line's memory
    /// is valid until the next one is asked for. Ends when <see cref="FollowOptions.Until"/> completes and what was
    /// written is read, or at once after the current content when not following; cancellation throws.
    /// </summary>
    public static async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadLinesAsync(
        string path, FollowOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new FollowOptions();
        options.Validate();
        var pending = new byte[Math.Min(options.MaxLineBytes, ChunkBytes)];
        var pendingLength = 0;
        var pendingUsed = false;
        // A chunk stays valid while its lines are handed out: the next chunk is asked for only after the last of them.
        await foreach (var chunk in ReadChunksAsync(path, options, cancellationToken).ConfigureAwait(false))
        {
            var read = chunk.Length;
            var start = 0;
            while (start < read)
            {
                var newline = chunk.Span[start..read].IndexOf((byte)'\n');
                var end = newline < 0 ? read : start + newline;
                if (newline >= 0 && !pendingUsed)
                {
                    // The whole line is in this chunk: hand out a slice of it, no copy.
                    yield return chunk.Slice(start, Math.Min(end - start, options.MaxLineBytes));
                }
                else
                {
                    var room = options.MaxLineBytes - pendingLength;
                    var take = Math.Min(room, end - start);
                    if (take > 0)
                    {
                        if (pendingLength + take > pending.Length)
                            Array.Resize(ref pending, Math.Min(options.MaxLineBytes, Math.Max(pending.Length * 2, pendingLength + take)));
                        chunk.Span.Slice(start, take).CopyTo(pending.AsSpan(pendingLength));
                        pendingLength += take;
                    }
                    pendingUsed = true;
                    if (newline >= 0)
                    {
                        yield return pending.AsMemory(0, pendingLength);
                        pendingLength = 0;
                        pendingUsed = false;
                    }
                }
                start = end + 1;
            }
        }
        if (pendingUsed)
            yield return pending.AsMemory(0, pendingLength);
    }

    private interface IChunkSource : IAsyncDisposable
    {
        /// <summary>Some bytes, or 0 at the end of the follow.</summary>
        ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken);
    }

    private sealed class FifoSource : IChunkSource
    {
        private readonly FollowOptions _options;
        private readonly SafePipeHandle _handle;
        private readonly AnonymousPipeClientStream _stream;
        private bool _draining;

        public FifoSource(string path, FollowOptions options)
        {
            _options = options;
            var fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
            if (fd < 0)
                throw new IOException($"Cannot open the FIFO {path}: errno {LibC.LastErrno}.");
            _handle = new SafePipeHandle(fd, ownsHandle: true);
            _stream = new AnonymousPipeClientStream(PipeDirection.In, _handle);
            _draining = !options.Follow;
        }

        public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            if (_draining)
                return IsReadable() ? await _stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) : 0;
            if (_options.Until is not { } until)
                return await _stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var read = _stream.ReadAsync(buffer, stop.Token).AsTask();
            if (await Task.WhenAny(read, until).ConfigureAwait(false) != read)
                await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                return await read.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The writer is done: what it wrote is in the pipe; take it without waiting for more.
                _draining = true;
                return await ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
        }

        private unsafe bool IsReadable()
        {
            var added = false;
            _handle.DangerousAddRef(ref added);
            try
            {
                var pfd = new LibC.PollFd { Fd = (int)_handle.DangerousGetHandle(), Events = LibC.POLLIN };
                return LibC.Poll(&pfd, 1, 0) > 0 && (pfd.Revents & LibC.POLLIN) != 0;
            }
            finally
            {
                if (added)
                    _handle.DangerousRelease();
            }
        }

        public async ValueTask DisposeAsync() => await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class RegularFileSource : IChunkSource
    {
        private readonly string _path;
        private readonly FollowOptions _options;
        private readonly Channel<bool> _changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        private readonly FileSystemWatcher? _watcher;
        private FileStream? _stream;
        private FileNodeId _id;
        private bool _first = true;
        private bool _draining;

        public RegularFileSource(string path, FollowOptions options)
        {
            _path = Path.GetFullPath(path);
            _options = options;
            _draining = !options.Follow;
            if (options.Follow)
                _watcher = TryWatch(_path, _changed.Writer);
        }

        public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (_stream is null && !TryOpen())
                {
                    if (_draining)
                        return 0;
                    await WaitAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                var read = await _stream!.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (read > 0)
                    return read;
                // At the end of the file held: has the path moved on to another file (rotation)?
                if (FileNodes.TryGetId(_path) is { } now && now != _id)
                {
                    await _stream.DisposeAsync().ConfigureAwait(false);
                    _stream = null;
                    continue;
                }
                // Truncated in place (copytruncate): start again from its beginning.
                if (_stream.Length < _stream.Position)
                {
                    _stream.Position = 0;
                    continue;
                }
                if (_draining)
                    return 0;
                await WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        private bool TryOpen()
        {
            try
            {
                _stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.Asynchronous);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return false;
            }
            _id = FileNodes.GetId(_stream.SafeFileHandle);
            // Only the file found at the start may be skipped to its end; a rotated-in file is new output.
            if (_first && _options.StartAtEnd)
                _stream.Seek(0, SeekOrigin.End);
            _first = false;
            return true;
        }

        private async Task WaitAsync(CancellationToken cancellationToken)
        {
            if (_options.Until is { IsCompleted: true })
            {
                // One more pass over everything written, then the end.
                _draining = true;
                return;
            }
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var tick = Task.Delay(_options.PollInterval, _options.TimeProvider, wait.Token);
            var changed = _changed.Reader.WaitToReadAsync(wait.Token).AsTask();
            var until = _options.Until ?? Task.Delay(Timeout.Infinite, wait.Token);
            await Task.WhenAny(tick, changed, until).ConfigureAwait(false);
            await wait.CancelAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            _changed.Reader.TryRead(out _);
            if (_options.Until is { IsCompleted: true })
                _draining = true;
        }

        private static FileSystemWatcher? TryWatch(string path, ChannelWriter<bool> changed)
        {
            var directory = Path.GetDirectoryName(path);
            if (directory is null || !Directory.Exists(directory))
                return null;
            try
            {
                var watcher = new FileSystemWatcher(directory, Path.GetFileName(path))
                {
                    NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.FileName | NotifyFilters.CreationTime,
                };
                watcher.Changed += (_, _) => changed.TryWrite(true);
                watcher.Created += (_, _) => changed.TryWrite(true);
                watcher.Renamed += (_, _) => changed.TryWrite(true);
                watcher.EnableRaisingEvents = true;
                return watcher;
            }
            catch (IOException)
            {
                // Out of inotify instances: the fallback tick alone keeps the follow going.
                return null;
            }
        }

        public async ValueTask DisposeAsync()
        {
            _watcher?.Dispose();
            if (_stream is not null)
                await _stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
