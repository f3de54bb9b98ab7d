// Reaping the children we spawn, all on one thread. Each child used to have a thread of its own blocked in waitpid(2)
// for as long as it ran: one thread per running VMM (bench --density: threads +1.0 per VM). Here one thread polls the
// pidfds of every running child, plus an eventfd that wakes it when a child is added, and reaps each the moment its
// pidfd turns readable (the child has ended). The thread starts with the first child and lives as long as the process,
// as the owner thread does. The same thread watches processes that are not our children (a detached VMM a host
// re-attached to): a pidfd turns readable when any process ends, so many re-attached VMMs cost no thread each; they are
// not ours to reap, and their status is not ours to learn.
using System.ComponentModel;

namespace Kiln.Interop;

/// <summary>Reaps spawned children by their pidfds on one shared thread.</summary>
internal static unsafe class ChildReaper
{
    private const int F_DUPFD_CLOEXEC = 1030;
    private const int WNOHANG = 1;

    private static readonly Lock Gate = new();
    private static readonly List<Child> Children = [];
    private static int _wakeFd = -1;
    private static bool _failed;

    // Reap: whether it is our child, to be reaped; a watched non-child only ends.
    private sealed record Child(int PidFd, int Pid, TaskCompletionSource<int> Status, bool Reap = true);

    /// <summary>
    /// Completes (with -1: the status is not ours to learn) once a process that is not our child has ended. Null when
    /// the shared thread cannot be used: the caller waits on a thread of its own.
    /// </summary>
    public static Task<int>? TryWatchAsync(int pid, PidFd pidFd) => Add(pid, pidFd, reap: false);

    /// <summary>
    /// Completes with the raw wait status once the child has ended and been reaped (-1 when someone else reaped it).
    /// The reaper keeps a duplicate of <paramref name="pidFd"/>: the caller may close its own while the child runs.
    /// Null when the shared thread cannot be used (its poll failed): the caller waits on a thread of its own.
    /// </summary>
    public static Task<int>? TryWaitAsync(int pid, PidFd pidFd) => Add(pid, pidFd, reap: true);

    private static Task<int>? Add(int pid, PidFd pidFd, bool reap)
    {
        lock (Gate)
        {
            if (_failed)
                return null;
        }
        var added = false;
        pidFd.DangerousAddRef(ref added);
        int fd;
        try
        {
            fd = LibC.Fcntl(pidFd.DangerousGetHandle().ToInt32(), F_DUPFD_CLOEXEC, 0);
        }
        finally
        {
            if (added)
                pidFd.DangerousRelease();
        }
        if (fd < 0)
            throw new Win32Exception(LibC.LastErrno, "fcntl(F_DUPFD_CLOEXEC) of a pidfd failed");
        var child = new Child(fd, pid, new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously), reap);
        lock (Gate)
        {
            if (_failed)
            {
                LibC.Close(fd);
                return null;
            }
            if (_wakeFd < 0)
                Start();
            Children.Add(child);
        }
        Wake();
        return child.Status.Task;
    }

    private static void Start()
    {
        var wake = LibC.EventFd(0, LibC.EFD_CLOEXEC);
        if (wake < 0)
            throw new Win32Exception(LibC.LastErrno, "eventfd failed");
        _wakeFd = wake;
        new Thread(Run) { IsBackground = true, Name = "kiln-reaper" }.Start();
    }

    private static void Wake()
    {
        ulong one = 1;
        _ = LibC.Write(_wakeFd, &one, sizeof(ulong));
    }

    private static void Run()
    {
        var polled = new List<Child>();
        var fds = new LibC.PollFd[1];
        while (true)
        {
            lock (Gate)
            {
                polled.Clear();
                polled.AddRange(Children);
            }
            if (fds.Length < polled.Count + 1)
                fds = new LibC.PollFd[Math.Max(polled.Count + 1, fds.Length * 2)];
            fds[0] = new LibC.PollFd { Fd = _wakeFd, Events = LibC.POLLIN };
            for (var i = 0; i < polled.Count; i++)
                fds[i + 1] = new LibC.PollFd { Fd = polled[i].PidFd, Events = LibC.POLLIN };
            int n;
            fixed (LibC.PollFd* p = fds)
                n = LibC.Poll(p, (nuint)(polled.Count + 1), -1);
            if (n < 0)
            {
                if (LibC.LastErrno == LibC.EINTR)
                    continue;
                // Not expected (the fds are ours and open): every child still gets reaped, each on a thread of its own.
                FallBackToThreads();
                return;
            }
            if (fds[0].Revents != 0)
            {
                ulong count;
                _ = LibC.Read(_wakeFd, &count, sizeof(ulong));
            }
            for (var i = 0; i < polled.Count; i++)
            {
                if (fds[i + 1].Revents == 0)
                    continue;
                var child = polled[i];
                lock (Gate)
                    Children.Remove(child);
                // Readable means ended; should it not be waitable yet after all, wait for it (it is ending).
                var status = !child.Reap ? -1 : Reap(child.Pid, WNOHANG) ?? Reap(child.Pid, 0) ?? -1;
                LibC.Close(child.PidFd);
                child.Status.SetResult(status);
            }
        }
    }

    private static void FallBackToThreads()
    {
        List<Child> left;
        lock (Gate)
        {
            _failed = true;
            left = [.. Children];
            Children.Clear();
        }
        foreach (var child in left)
        {
            new Thread(() =>
            {
                var status = child.Reap ? Reap(child.Pid, 0) ?? -1 : WaitUntilEnded(child.PidFd);
                LibC.Close(child.PidFd);
                child.Status.SetResult(status);
            }) { IsBackground = true, Name = "kiln-reap" }.Start();
        }
    }

    /// <summary>Blocks in poll(2) until the pidfd turns readable (the process ended); -1, the status being unknown.</summary>
    private static int WaitUntilEnded(int pidFd)
    {
        var fd = new LibC.PollFd { Fd = pidFd, Events = LibC.POLLIN };
        while (LibC.Poll(&fd, 1, -1) < 0 && LibC.LastErrno == LibC.EINTR)
        {
        }
        return -1;
    }

    /// <summary>
    /// waitpid(2): the raw status; -1 when someone else reaped it (the status is lost); null when
    /// <paramref name="options"/> holds WNOHANG and it still runs.
    /// </summary>
    internal static int? Reap(int pid, int options)
    {
        int status;
        while (true)
        {
            var n = LibC.WaitPid(pid, &status, options);
            if (n == pid)
                return status;
            if (n == 0)
                return null;
            if (n < 0 && LibC.LastErrno == LibC.EINTR)
                continue;
            // ECHILD: reaped by someone else (a SIGCHLD handler that reaps every child).
            return -1;
        }
    }
}
