// One test's jail: its own chroot base under /tmp, its own parent cgroup, and a clean-up that runs however the test
// ends: the jailed process is killed, the cgroups it got are removed from every hierarchy, the tree is deleted.
using System.Globalization;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed class JailScope : IAsyncDisposable
{
    public JailScope()
    {
        var tag = Guid.NewGuid().ToString("N")[..10];
        Base = Path.Combine("/tmp", "kj-" + tag);
        Directory.CreateDirectory(Base);
        ParentCgroup = "kiln-test-" + tag;
        Id = "jail-" + tag;
    }

    /// <summary>The jailer under test: KILN_JAILER (with KILN_FIRECRACKER as its exec file) or the stand-in's.</summary>
    public static string Jailer => Environment.GetEnvironmentVariable("KILN_JAILER") is { Length: > 0 } real
        ? real
        : Path.Combine(AppContext.BaseDirectory, "fake-jailer");

    public static string ExecFile => Environment.GetEnvironmentVariable("KILN_JAILER") is { Length: > 0 }
        ? Environment.GetEnvironmentVariable("KILN_FIRECRACKER") ?? throw new InvalidOperationException("KILN_JAILER needs KILN_FIRECRACKER")
        : FakeProcess.BinaryPath;

    public static string ExecName => Path.GetFileName(ExecFile);

    public string Base { get; }

    public string Id { get; }

    public string ParentCgroup { get; }

    public string Root => Path.Combine(Base, ExecName, Id, "root");

    public string PidFile => Path.Combine(Root, ExecName + ".pid");

    public string ApiSocket => Path.Combine(Root, "run", "firecracker.socket");

    /// <summary>The required arguments for this scope, then <paramref name="more"/>.</summary>
    public string[] Args(uint uid, uint gid, params string[] more) =>
    [
        "--id", Id, "--exec-file", ExecFile, "--uid", uid.ToString(CultureInfo.InvariantCulture),
        "--gid", gid.ToString(CultureInfo.InvariantCulture), "--chroot-base-dir", Base, "--parent-cgroup", ParentCgroup, .. more,
    ];

    /// <summary>The PID the jailer wrote, once the file holds one; null if it never did within the deadline.</summary>
    public async Task<int?> WaitForPidFileAsync(TimeSpan within, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(PidFile) && int.TryParse(await File.ReadAllTextAsync(PidFile, ct), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                return pid;
            }

            await Task.Delay(5, ct);
        }

        return null;
    }

    /// <summary>The cgroup directories a v1 controller (or the v2 hierarchy) holds for this scope.</summary>
    public static IEnumerable<string> CgroupMounts()
    {
        foreach (var line in File.ReadLines("/proc/mounts"))
        {
            var f = line.Split(' ');
            if (f.Length > 3 && f[2] is "cgroup" or "cgroup2")
            {
                yield return f[1];
            }
        }
    }

    public static bool IsAlive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z');

    public async ValueTask DisposeAsync()
    {
        if (File.Exists(PidFile) && int.TryParse(File.ReadAllText(PidFile), out var pid) && IsJailed(pid))
        {
            _ = NativeMethods.kill(pid, NativeMethods.SIGKILL);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (IsAlive(pid) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(5);
            }
        }

        foreach (var mount in CgroupMounts())
        {
            var parent = Path.Combine(mount, ParentCgroup);
            if (!Directory.Exists(parent))
            {
                continue;
            }

            foreach (var dir in Directory.EnumerateDirectories(parent).Append(parent))
            {
                try
                {
                    Directory.Delete(dir);
                }
                catch (IOException)
                {
                    // Still populated by a process that is dying; nothing more a test can do.
                }
            }
        }

        Directory.Delete(Base, recursive: true);
    }

    // Only ever kill the process the jail started: its root is the jail's.
    private bool IsJailed(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/exe").LinkTarget == "/" + ExecName;
        }
        catch (IOException)
        {
            return false;
        }
    }
}
