// --exit-with-parent: the agent ends when the process that started it ends (the stand-in, a test). PR_SET_PDEATHSIG
// would fire when the *thread* that forked us exits — .NET retires thread-pool threads — so we hold a pidfd on the
// parent instead and wait for it to become readable (the parent exited).
using Kiln.GuestAgent.Interop;

namespace Kiln.GuestAgent;

internal static unsafe class ParentWatch
{
    private const long SYS_pidfd_open = 434;

    /// <summary>Calls <paramref name="onExit"/> once the parent process is gone (at once if it already is).</summary>
    public static void Start(Action onExit)
    {
        var parent = Native.GetPPid();
        var fd = (int)Native.Syscall(SYS_pidfd_open, parent, 0);
        // A parent that died before the pidfd opened left us re-parented: nothing to wait for.
        if (fd < 0 || Native.GetPPid() != parent)
        {
            onExit();
            return;
        }

        var thread = new Thread(() =>
        {
            var pfd = new Native.PollFd { Fd = fd, Events = Native.POLLIN };
            while (Native.Poll(&pfd, 1, -1) < 0 && Native.LastErrno == Native.EINTR)
            {
            }

            onExit();
        })
        { IsBackground = true, Name = "parent watch" };
        thread.Start();
    }
}
