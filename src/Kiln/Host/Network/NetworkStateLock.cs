// Kiln's nftables table and the link-subnet allocation are shared by every sandbox on the host, across processes:
// an flock(2) on the network state directory serialises their changes. It dies with its descriptor, so a killed
// holder cannot wedge it.
using Kiln.Interop;

namespace Kiln.Host.Network;

internal sealed class NetworkStateLock : IDisposable
{
    private int _fd;

    private NetworkStateLock(int fd) => _fd = fd;

    /// <exception cref="NetworkException">The directory cannot be opened or the lock stayed taken past the timeout.</exception>
    public static async Task<NetworkStateLock> AcquireAsync(string directory, TimeProvider time, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        var fd = LibC.Open(directory, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
            throw new NetworkException($"Cannot open {directory} to lock it (errno {LibC.LastErrno}).");
        var started = time.GetTimestamp();
        var backoff = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            if (LibC.Flock(fd, LibC.LOCK_EX | LibC.LOCK_NB) == 0)
                return new NetworkStateLock(fd);
            var errno = LibC.LastErrno;
            if (errno == LibC.EINTR)
                continue;
            if (errno != LibC.EAGAIN || time.GetElapsedTime(started) > TimeSpan.FromSeconds(60))
            {
                LibC.Close(fd);
                throw new NetworkException($"Cannot lock {directory} (errno {errno}).");
            }
            try
            {
                // flock has no asynchronous form: probe with a growing back-off.
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                LibC.Close(fd);
                throw;
            }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromMilliseconds(50).Ticks));
        }
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
            LibC.Close(fd);
    }
}
