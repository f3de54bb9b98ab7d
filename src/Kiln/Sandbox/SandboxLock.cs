// Two drivers may work on one sandbox at once: a library owner and `kiln drive add` from a terminal, or two kiln
// commands. Each keeps the pool and the state in memory, so without exclusion both would take the same free pool slot
// and the second PATCH would silently swap the first one's drive. An flock(2) on the sandbox directory serialises
// their operations across processes; whoever gets it re-reads the state file before acting. The lock is held for one
// operation, never for a driver's lifetime, and it dies with its file descriptor, so a crashed holder cannot wedge it.
using Kiln.Interop;

namespace Kiln.Sandbox;

/// <summary>An exclusive advisory lock on a sandbox directory, released on dispose.</summary>
internal sealed class SandboxLock : IDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan LastBackoff = TimeSpan.FromMilliseconds(50);

    private int _fd;

    private SandboxLock(int fd) => _fd = fd;

    /// <summary>
    /// Takes the lock, waiting while another driver holds it, up to <paramref name="timeout"/> on
    /// <paramref name="time"/>. flock has no asynchronous form, so the wait probes with a growing back-off.
    /// </summary>
    /// <exception cref="SandboxException">The directory cannot be opened, or the lock stayed taken past the timeout.</exception>
    public static async Task<SandboxLock> AcquireAsync(string directory, string sandboxId, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var fd = LibC.Open(directory, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
            throw new SandboxException($"Cannot open the sandbox directory {directory} to lock it (errno {LibC.LastErrno}).") { SandboxId = sandboxId };
        try
        {
            var started = time.GetTimestamp();
            var backoff = FirstBackoff;
            while (true)
            {
                if (LibC.Flock(fd, LibC.LOCK_EX | LibC.LOCK_NB) == 0)
                    return new SandboxLock(fd);
                var errno = LibC.LastErrno;
                if (errno == LibC.EINTR)
                    continue;
                if (errno != LibC.EAGAIN)
                    throw new SandboxException($"Cannot lock the sandbox directory {directory} (errno {errno}).") { SandboxId = sandboxId };
                if (time.GetElapsedTime(started) >= timeout)
                {
                    throw new SandboxException(
                        $"Another driver has held sandbox '{sandboxId}' for over {timeout.TotalSeconds:0.#} s; giving up.") { SandboxId = sandboxId };
                }
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, LastBackoff.Ticks));
            }
        }
        catch
        {
            LibC.Close(fd);
            throw;
        }
    }

    /// <summary>Takes the lock if nobody holds it; null when another driver does (it is at work on the sandbox).</summary>
    /// <exception cref="SandboxException">The directory cannot be opened or locked.</exception>
    public static SandboxLock? TryAcquire(string directory, string sandboxId)
    {
        var fd = LibC.Open(directory, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
            throw new SandboxException($"Cannot open the sandbox directory {directory} to lock it (errno {LibC.LastErrno}).") { SandboxId = sandboxId };
        while (true)
        {
            if (LibC.Flock(fd, LibC.LOCK_EX | LibC.LOCK_NB) == 0)
                return new SandboxLock(fd);
            var errno = LibC.LastErrno;
            if (errno == LibC.EINTR)
                continue;
            LibC.Close(fd);
            if (errno == LibC.EAGAIN)
                return null;
            throw new SandboxException($"Cannot lock the sandbox directory {directory} (errno {errno}).") { SandboxId = sandboxId };
        }
    }

    /// <summary>Releases the lock (closing the descriptor releases the flock).</summary>
    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
            LibC.Close(fd);
    }
}
