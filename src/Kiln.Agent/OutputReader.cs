// Reads a command's output pipe on a dedicated thread, waiting in poll(2) on the pipe and on an eventfd, so that a
// stop (the exec is over but a left-behind process still holds the pipe) ends the read at once. A read blocked in
// read(2) on a pipe cannot be interrupted by closing the descriptor, and .NET's pipe streams read that way.
using System.ComponentModel;
using Kiln.GuestAgent.Interop;
using Microsoft.Win32.SafeHandles;

namespace Kiln.GuestAgent;

internal sealed unsafe class OutputReader : IDisposable
{
    private readonly int _stopFd;

    public OutputReader()
    {
        _stopFd = Native.EventFd(0, Native.O_CLOEXEC);
        if (_stopFd < 0)
            throw new Win32Exception(Native.LastErrno, "eventfd failed");
    }

    /// <summary>Makes every current and future <see cref="Read"/> return 0.</summary>
    public void Stop()
    {
        long one = 1;
        _ = Native.Write(_stopFd, (byte*)&one, sizeof(long));
    }

    /// <summary>Blocks until data, end of file, or <see cref="Stop"/>; returns the count read (0: the stream is over).</summary>
    public int Read(SafeFileHandle pipe, Span<byte> buffer)
    {
        var added = false;
        pipe.DangerousAddRef(ref added);
        try
        {
            var fd = (int)pipe.DangerousGetHandle();
            var fds = stackalloc Native.PollFd[2];
            while (true)
            {
                fds[0] = new Native.PollFd { Fd = fd, Events = Native.POLLIN };
                fds[1] = new Native.PollFd { Fd = _stopFd, Events = Native.POLLIN };
                if (Native.Poll(fds, 2, -1) < 0)
                {
                    if (Native.LastErrno == Native.EINTR)
                        continue;
                    throw new Win32Exception(Native.LastErrno, "poll failed");
                }

                if (fds[1].Revents != 0)
                    return 0;
                if (fds[0].Revents == 0)
                    continue;
                fixed (byte* p = buffer)
                {
                    var n = Native.Read(fd, p, (nuint)buffer.Length);
                    if (n >= 0)
                        return (int)n;
                    if (Native.LastErrno != Native.EINTR)
                        return 0; // a read error ends the stream like EOF: there is nothing more to get from it
                }
            }
        }
        finally
        {
            if (added)
                pipe.DangerousRelease();
        }
    }

    public void Dispose() => _ = Native.Close(_stopFd);
}
