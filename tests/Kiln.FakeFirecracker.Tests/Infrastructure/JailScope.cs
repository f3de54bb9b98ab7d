// One test's jail: its own chroot base under /tmp, its own parent cgroup, and a clean-up that runs however the test
// ends: the jailed process is killed, the cgroups it got are removed from every hierarchy, the tree is deleted.
using System.Globalization;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed class JailScope : IAsyncDisposable
{
    /// <summary>The jailers a contract test runs against: the stand-in's always, the real one when configured.</summary>
    public static TheoryData<string> Targets => ["fake", "real"];

    /// <param name="target">"fake": fake-jailer with fake-firecracker as its exec file, whatever the environment says;
    /// "real": KILN_JAILER with KILN_FIRECRACKER, the test skipped with the reason when they are not set.</param>
    public JailScope(string target = "fake")
    {
        (Jailer, ExecFile) = JailerFor(target);
        var tag = Guid.NewGuid().ToString("N")[..10];
        Base = Path.Combine("/tmp", "kj-" + tag);
        Directory.CreateDirectory(Base);
        ParentCgroup = "kiln-test-" + tag;
        Id = "jail-" + tag;
    }

    /// <summary>The jailer and its exec file for a target (a real one skips the test with the reason when absent).</summary>
    public static (string Jailer, string ExecFile) JailerFor(string target) => target switch
    {
        "fake" => (Path.Combine(AppContext.BaseDirectory, "fake-jailer"), FakeProcess.BinaryPath),
        "real" => Kiln.Testing.RealFirecracker.RequireJailer(),
        _ => throw new ArgumentOutOfRangeException(nameof(target)),
    };

    /// <summary>The jailer under test.</summary>
    public string Jailer { get; }

    /// <summary>Its exec file.</summary>
    public string ExecFile { get; }

    public string ExecName => Path.GetFileName(ExecFile);

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
