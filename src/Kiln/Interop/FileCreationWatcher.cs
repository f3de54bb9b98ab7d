// Waiting for a file to appear (a VMM's API socket), for the whole process on one inotify descriptor and one reader
// thread. Each start used to make a FileSystemWatcher: an inotify instance, a watch and a reader of its own, set up and
// torn down per VM (its thread ~7 % of a warmed-up start's CPU in bench --density). Here a wait adds a watch on the
// file's directory (shared by every wait in that directory, removed with the last), and the one reader completes the
// waits keyed by directory and name. The watch is added before the file is looked for, so a file made before the wait
// is found by that look and one made after by the reader: neither slips between the two.
using System.ComponentModel;
using System.Text;

namespace Kiln.Interop;

/// <summary>Completes waits for files to appear, on one inotify descriptor and one thread for the process.</summary>
internal static class FileCreationWatcher
{
    private const uint Mask = LibC.IN_CREATE | LibC.IN_MOVED_TO | LibC.IN_ONLYDIR | LibC.IN_DELETE_SELF | LibC.IN_MOVE_SELF;

    /// <summary>The events after which a directory's waits can no longer be met through the path they were given.</summary>
    private const uint DirectoryGone = LibC.IN_DELETE_SELF | LibC.IN_MOVE_SELF | LibC.IN_UNMOUNT | LibC.IN_IGNORED;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<int, WatchedDirectory> Directories = [];
    private static int _fd = -1;
    private static Exception? _readerFailure;

    /// <summary>The waits in one watched directory, by file name.</summary>
    private sealed class WatchedDirectory(int wd, string path)
    {
        public int Wd { get; } = wd;

        public string Path { get; } = path;

        public Dictionary<string, List<Waiter>> ByName { get; } = new(StringComparer.Ordinal);
    }

    private sealed class Waiter(string path, string name) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public string Path { get; } = path;

        public string Name { get; } = name;

        /// <summary>Where the wait is registered; null once it is no longer (completed, cancelled, failed).</summary>
        public WatchedDirectory? Directory { get; set; }

        public CancellationTokenRegistration Cancellation { get; set; }
    }

    /// <summary>Completes once <paramref name="path"/> exists (created, or renamed into place).</summary>
    /// <exception cref="DirectoryNotFoundException">Its directory does not exist, or was removed or moved while waiting.</exception>
    /// <exception cref="IOException">inotify could not be used (no descriptor, no watch left: the errno's text).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task WaitAsync(string path, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
            return Task.FromCanceled(cancellationToken);
        var full = System.IO.Path.GetFullPath(path);
        var directory = System.IO.Path.GetDirectoryName(full);
        var name = System.IO.Path.GetFileName(full);
        if (directory is null || name.Length == 0)
            throw new ArgumentException($"{path} names no file in a directory.", nameof(path));

        var waiter = new Waiter(full, name);
        lock (Gate)
        {
            if (_readerFailure is { } failure)
                throw new IOException($"Waiting for {full} failed: the inotify reader failed earlier ({failure.Message}).", failure);
            if (_fd < 0)
                Start();
            var wd = LibC.InotifyAddWatch(_fd, directory, Mask);
            if (wd < 0)
            {
                var errno = LibC.LastErrno;
                if (errno is LibC.ENOENT or LibC.ENOTDIR)
                    throw new DirectoryNotFoundException($"Cannot wait for {full}: its directory {directory} does not exist.");
                throw new IOException($"inotify_add_watch({directory}) failed: {new Win32Exception(errno).Message}", errno);
            }
            if (!Directories.TryGetValue(wd, out var watched))
                Directories[wd] = watched = new WatchedDirectory(wd, directory);
            if (!watched.ByName.TryGetValue(name, out var waiters))
                watched.ByName[name] = waiters = [];
            waiters.Add(waiter);
            waiter.Directory = watched;
        }

        // The watch is in place: a file made before it is found here, one made from now on by the reader.
        if (Path.Exists(full))
        {
            Complete(waiter, null);
            return waiter.Task;
        }
        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.UnsafeRegister(static (state, token) =>
                Complete((Waiter)state!, new OperationCanceledException(token)), waiter);
            lock (Gate)
            {
                if (waiter.Directory is not null)
                {
                    waiter.Cancellation = registration;
                    registration = default;
                }
            }
            // Completed meanwhile (or cancelled already, in which case the callback ran): nothing left to unregister.
            registration.Unregister();
        }
        return waiter.Task;
    }

    /// <summary>As <see cref="WaitAsync(string, CancellationToken)"/>, bounded by <paramref name="timeout"/> on <paramref name="time"/>.</summary>
    /// <exception cref="TimeoutException"><paramref name="path"/> did not appear within <paramref name="timeout"/>.</exception>
    public static async Task WaitAsync(string path, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            await WaitAsync(path, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{path} did not appear within {timeout.TotalSeconds:0.###} s.");
        }
    }

    /// <summary>Whether any wait is registered in <paramref name="directory"/> (tests: the last one removes the watch).</summary>
    internal static bool IsWatching(string directory)
    {
        var full = System.IO.Path.GetFullPath(directory);
        lock (Gate)
            return Directories.Values.Any(d => d.Path == full);
    }

    private static void Start()
    {
        var fd = LibC.InotifyInit1(LibC.IN_CLOEXEC);
        if (fd < 0)
        {
            var errno = LibC.LastErrno;
            throw new IOException($"inotify_init1 failed: {new Win32Exception(errno).Message}", errno);
        }
        _fd = fd;
        new Thread(Read) { IsBackground = true, Name = "kiln-inotify" }.Start();
    }

    /// <summary>Unregisters <paramref name="waiter"/> (if it still is) and completes it: done, or with <paramref name="failure"/>.</summary>
    private static void Complete(Waiter waiter, Exception? failure)
    {
        CancellationTokenRegistration cancellation;
        lock (Gate)
        {
            if (waiter.Directory is not { } watched)
                return;
            if (watched.ByName.TryGetValue(waiter.Name, out var waiters))
            {
                waiters.Remove(waiter);
                if (waiters.Count == 0)
                    watched.ByName.Remove(waiter.Name);
            }
            if (watched.ByName.Count == 0)
                Unwatch(watched);
            waiter.Directory = null;
            cancellation = waiter.Cancellation;
        }
        // Unregister, not Dispose: this may run inside the cancellation callback itself.
        cancellation.Unregister();
        Settle(waiter, failure);
    }

    private static void Settle(Waiter waiter, Exception? failure)
    {
        switch (failure)
        {
            case null:
                waiter.TrySetResult();
                break;
            case OperationCanceledException cancelled:
                waiter.TrySetCanceled(cancelled.CancellationToken);
                break;
            default:
                waiter.TrySetException(failure);
                break;
        }
    }

    /// <summary>Forgets a directory nobody waits in any more; the caller holds the gate.</summary>
    private static void Unwatch(WatchedDirectory watched)
    {
        if (Directories.Remove(watched.Wd))
        {
            // EINVAL when the kernel has dropped the watch already (the directory was removed and its IN_IGNORED is
            // still queued): either way the watch is gone, which is what is wanted.
            _ = LibC.InotifyRmWatch(_fd, watched.Wd);
        }
    }

    private static unsafe void Read()
    {
        // Large enough for many events per read; each is 16 bytes plus a name of at most NAME_MAX + 1.
        var buffer = new byte[64 * 1024];
        var completed = new List<(Waiter Waiter, Exception? Failure)>();
        while (true)
        {
            nint n;
            fixed (byte* p = buffer)
                n = LibC.Read(_fd, p, (nuint)buffer.Length);
            if (n < 0)
            {
                var errno = LibC.LastErrno;
                if (errno == LibC.EINTR)
                    continue;
                FailAll(new IOException($"Reading inotify events failed: {new Win32Exception(errno).Message}", errno));
                return;
            }
            completed.Clear();
            lock (Gate)
            {
                for (var offset = 0; offset + sizeof(LibC.InotifyEvent) <= n;)
                {
                    LibC.InotifyEvent e;
                    fixed (byte* p = &buffer[offset])
                        e = *(LibC.InotifyEvent*)p;
                    var nameStart = offset + sizeof(LibC.InotifyEvent);
                    offset = nameStart + (int)e.NameLength;
                    if ((e.Mask & LibC.IN_Q_OVERFLOW) != 0)
                    {
                        // Events were lost: whoever's file exists now is done; the rest keep waiting.
                        foreach (var watched in Directories.Values)
                        {
                            foreach (var waiters in watched.ByName.Values)
                                completed.AddRange(waiters.Where(w => Path.Exists(w.Path)).Select(w => (w, (Exception?)null)));
                        }
                        continue;
                    }
                    if (!Directories.TryGetValue(e.Wd, out var directory))
                        continue; // a watch removed since (its last wait ended) still had events queued
                    if ((e.Mask & DirectoryGone) != 0)
                    {
                        foreach (var waiters in directory.ByName.Values)
                        {
                            foreach (var w in waiters)
                            {
                                completed.Add((w, new DirectoryNotFoundException(
                                    $"The directory {directory.Path} was removed or moved while waiting for {w.Path} to appear.")));
                            }
                        }
                        continue;
                    }
                    if ((e.Mask & (LibC.IN_CREATE | LibC.IN_MOVED_TO)) == 0 || e.NameLength == 0)
                        continue;
                    var name = buffer.AsSpan(nameStart, (int)e.NameLength);
                    var end = name.IndexOf((byte)0);
                    if (end >= 0)
                        name = name[..end];
                    if (directory.ByName.TryGetValue(Encoding.UTF8.GetString(name), out var met))
                        completed.AddRange(met.Select(w => (w, (Exception?)null)));
                }
            }
            foreach (var (waiter, failure) in completed)
                Complete(waiter, failure);
        }
    }

    /// <summary>The reader cannot go on (not expected: the descriptor is ours): every wait fails with why, as do later ones.</summary>
    private static void FailAll(Exception failure)
    {
        List<Waiter> left;
        lock (Gate)
        {
            _readerFailure = failure;
            left = [.. Directories.Values.SelectMany(d => d.ByName.Values).SelectMany(w => w)];
        }
        foreach (var waiter in left)
            Complete(waiter, failure);
    }
}
