// A pidfd: a handle on one process (not a PID number), so signals through it can never hit a process that reused
// the PID. It also becomes readable when the process exits, which lets us await the exit of a process that is not
// our child (a re-attached VMM) without polling.
using System.ComponentModel;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Interop;

/// <summary>An owned pidfd.</summary>
internal sealed class PidFd : SafeHandleZeroOrMinusOneIsInvalid
{
    public PidFd() : base(ownsHandle: true) { }

    private PidFd(int fd) : base(ownsHandle: true) => SetHandle(fd);

    /// <summary>Opens a pidfd, or returns null when the process is gone or the kernel has no pidfds.</summary>
    public static PidFd? TryOpen(int pid)
    {
        var fd = LibC.PidFdOpen(pid);
        if (fd >= 0)
            return new PidFd(fd);
        var errno = LibC.LastErrno;
        if (errno is LibC.ESRCH or LibC.ENOSYS or 1 /* EPERM */ or 22 /* EINVAL */)
            return null;
        throw new Win32Exception(errno, $"pidfd_open({pid}) failed");
    }

    /// <summary>Sends a signal; false when the process has already exited.</summary>
    public bool TrySignal(int signal)
    {
        var added = false;
        DangerousAddRef(ref added);
        try
        {
            if (LibC.PidFdSendSignal((int)handle, signal) == 0)
                return true;
            var errno = LibC.LastErrno;
            if (errno == LibC.ESRCH)
                return false;
            throw new Win32Exception(errno, $"pidfd_send_signal({signal}) failed");
        }
        finally
        {
            if (added)
                DangerousRelease();
        }
    }

    /// <summary>Whether the process has exited (the pidfd polls readable), without blocking.</summary>
    public unsafe bool HasExited()
    {
        var added = false;
        DangerousAddRef(ref added);
        try
        {
            var pfd = new LibC.PollFd { Fd = (int)handle, Events = LibC.POLLIN };
            var n = LibC.Poll(&pfd, 1, 0);
            return n > 0 && (pfd.Revents & LibC.POLLIN) != 0;
        }
        finally
        {
            if (added)
                DangerousRelease();
        }
    }

    /// <summary>
    /// Completes when the process exits. Blocks one dedicated thread in poll(2) on the pidfd and an eventfd that
    /// cancellation writes to: no timer, no polling interval.
    /// </summary>
    public Task WaitForExitAsync(CancellationToken cancellationToken)
    {
        if (HasExited())
            return Task.CompletedTask;
        cancellationToken.ThrowIfCancellationRequested();
        var efd = LibC.EventFd(0, LibC.EFD_CLOEXEC);
        if (efd < 0)
            throw new Win32Exception(LibC.LastErrno, "eventfd failed");
        var added = false;
        DangerousAddRef(ref added);
        var registration = cancellationToken.UnsafeRegister(static state => WakeEventFd((int)state!), efd);
        return Task.Factory.StartNew(() =>
        {
            try
            {
                PollUntilExitOrWake((int)handle, efd);
                cancellationToken.ThrowIfCancellationRequested();
            }
            finally
            {
                registration.Dispose();
                LibC.Close(efd);
                if (added)
                    DangerousRelease();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
    }

    private static unsafe void WakeEventFd(int efd)
    {
        ulong one = 1;
        _ = LibC.Write(efd, &one, sizeof(ulong));
    }

    private static unsafe void PollUntilExitOrWake(int pidfd, int efd)
    {
        var fds = stackalloc LibC.PollFd[2];
        fds[0] = new LibC.PollFd { Fd = pidfd, Events = LibC.POLLIN };
        fds[1] = new LibC.PollFd { Fd = efd, Events = LibC.POLLIN };
        while (true)
        {
            var n = LibC.Poll(fds, 2, -1);
            if (n > 0)
                return;
            if (n < 0 && LibC.LastErrno != LibC.EINTR)
                throw new Win32Exception(LibC.LastErrno, "poll on pidfd failed");
        }
    }

    /// <inheritdoc />
    protected override bool ReleaseHandle() => LibC.Close((int)handle) == 0;
}
