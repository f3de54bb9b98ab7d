// What the agent does as the guest's PID 1: mount the kernel filesystems, reap every orphan that is re-parented to
// it, and power the machine off cleanly (everyone else SIGTERMed then SIGKILLed, filesystems synced).
//
// Reaping: the .NET runtime's own SIGCHLD handling reaps every child when it runs as PID 1 (it calls waitpid(-1)),
// which would steal the exit statuses of the commands the agent spawns. So PID 1 keeps nothing but this loop, and the
// server runs as its child (`--init` tells it so); the server's commands are the server's children, and only true
// orphans come back here.
using System.Diagnostics;
using Kiln.GuestAgent.Interop;

namespace Kiln.GuestAgent;

internal static unsafe class InitDuties
{
    private const nuint MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8;

    public static void MountKernelFileSystems(TextWriter log)
    {
        MountOne("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, null, log);
        MountOne("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, null, log);
        MountOne("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", log);
        Directory.CreateDirectory("/dev/pts");
        MountOne("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666", log);
        MountOne("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", log);
    }

    private static void MountOne(string source, string target, string type, nuint flags, string? data, TextWriter log)
    {
        try
        {
            Directory.CreateDirectory(target);
        }
        catch (IOException e)
        {
            log.WriteLine($"kiln-agent: cannot create {target}: {e.Message}");
            return;
        }
        catch (UnauthorizedAccessException e)
        {
            log.WriteLine($"kiln-agent: cannot create {target}: {e.Message}");
            return;
        }

        if (Native.Mount(source, target, type, flags, data) != 0)
        {
            var errno = Native.LastErrno;
            if (errno != Native.EBUSY)
                log.WriteLine($"kiln-agent: mount {type} on {target}: {Native.ErrorText(errno)}");
        }
    }

    /// <summary>Reaps children until <paramref name="server"/> exits; returns how it ended.</summary>
    public static (int? ExitCode, int? Signal) ReapUntilExit(int server)
    {
        while (true)
        {
            int status;
            var pid = Native.WaitPid(-1, &status, 0);
            if (pid < 0)
            {
                var errno = Native.LastErrno;
                if (errno == Native.EINTR)
                    continue;
                return (null, null); // ECHILD: the server is gone and so is everyone else
            }

            if (pid == server)
            {
                var termSig = status & 0x7F;
                return termSig == 0 ? ((status >> 8) & 0xFF, null) : (null, termSig);
            }
        }
    }

    /// <summary>SIGTERM everyone, give them <paramref name="grace"/>, SIGKILL the rest, sync, power off.</summary>
    public static void PowerOff(TimeSpan grace, TextWriter log)
    {
        // kill(-1) reaches every process but the caller and PID 1.
        Native.Kill(-1, Native.SIGTERM);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < grace && OthersAlive())
            Thread.Sleep(10); // polling /proc: processes that are not our children give no other exit signal
        Native.Kill(-1, Native.SIGKILL);
        Native.Sync();
        log.WriteLine("kiln-agent: powering off");
        log.Flush();
        if (Native.Reboot(Native.LINUX_REBOOT_CMD_POWER_OFF) != 0)
            log.WriteLine($"kiln-agent: reboot(POWER_OFF) failed: {Native.ErrorText(Native.LastErrno)}");
    }

    private static bool OthersAlive()
    {
        var self = Native.GetPid();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && pid != 1 && pid != self && !IsKernelThreadOrZombie(dir))
                return true;
        }

        return false;
    }

    private static bool IsKernelThreadOrZombie(string procDir)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(procDir, "stat"));
            var afterName = stat[(stat.LastIndexOf(')') + 2)..];
            var fields = afterName.Split(' ');
            // state is fields[0]; ppid fields[1]; kernel threads are children of kthreadd (2) or are kthreadd.
            return fields[0] is "Z" or "X" || fields[1] == "2" || fields[1] == "0";
        }
        catch (IOException)
        {
            return true;
        }
    }
}
