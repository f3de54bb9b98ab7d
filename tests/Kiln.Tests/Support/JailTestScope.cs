// One test's jail: a chroot base of its own under /tmp, a parent cgroup of its own, and a clean-up that runs however
// the test ended: the jail's VMM is killed (only if proven to be the jail's), its cgroups removed from every
// hierarchy, its mounts undone and the tree deleted.
using Kiln.Api;
using Kiln.Host;
using Kiln.Vmm;

namespace Kiln.Tests.Support;

public sealed class JailTestScope : IAsyncDisposable
{
    /// <summary>nobody:nogroup, which Debian always has.</summary>
    public const uint Uid = 65534;
    public const uint Gid = 65534;

    /// <summary>The jailer pairs a jail test runs against: the stand-in's always, the real one when configured.</summary>
    public static TheoryData<string> Targets => ["fake", "real"];

    /// <param name="target">"fake": fake-jailer with the stand-in, whatever the environment says; "real":
    /// KILN_JAILER with KILN_FIRECRACKER, the test skipped with the reason when they are not set.</param>
    public JailTestScope(string target = "fake")
    {
        (JailerPath, FirecrackerPath) = target switch
        {
            "fake" => (Path.Combine(AppContext.BaseDirectory, "fake-jailer"), SandboxTarget.FakePath),
            "real" => Kiln.Testing.RealFirecracker.RequireJailer(),
            _ => throw new ArgumentOutOfRangeException(nameof(target)),
        };
        IsReal = target == "real";
        var tag = Guid.NewGuid().ToString("N")[..10];
        Base = Directory.CreateDirectory(Path.Combine("/tmp", "kj" + tag)).FullName;
        Files = Directory.CreateDirectory(Path.Combine(Base, "files")).FullName;
        ParentCgroup = "kiln-test-" + tag;
        Id = "vm-" + tag;
    }

    /// <summary>The jailer under test.</summary>
    public string JailerPath { get; }

    /// <summary>Its exec file: the stand-in, or real firecracker.</summary>
    public string FirecrackerPath { get; }

    /// <summary>Whether this is the real jailer.</summary>
    public bool IsReal { get; }

    public string Base { get; }

    public string Files { get; }

    public string Id { get; }

    public string ParentCgroup { get; }

    public static void RequireRoot() => Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");

    public JailSettings Settings(bool withLimits = true) => new()
    {
        JailerPath = JailerPath,
        Uid = Uid,
        Gid = Gid,
        ChrootBaseDirectory = Base,
        ParentCgroup = ParentCgroup,
        CpuQuota = withLimits && Cgroups.HasController(CgroupVersion.V1, "cpu") ? 0.5 : null,
        MemoryLimitBytes = withLimits && Cgroups.HasController(CgroupVersion.V1, "memory") ? 256L << 20 : null,
        OpenFilesLimit = 512,
    };

    public string File(string name, string content = "data")
    {
        var path = Path.Combine(Files, name);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    public JailedLaunchOptions Options(JailSettings settings, params JailFile[] files) => new()
    {
        Jail = settings,
        FirecrackerPath = FirecrackerPath,
        Id = Id,
        Arguments = new VmmArguments(JailLayout.ApiSocketInJail),
        OutputPath = Path.Combine(Files, "console.log"),
        Files = files,
    };

    /// <summary>Waits until the jailed VMM's API answers, racing its exit.</summary>
    public static async Task<InstanceInfo> WaitForApiAsync(JailedVmm vmm)
    {
        await using var client = new FirecrackerClient(vmm.ApiSocketPath);
        return await Eventually.ApiAnswersAsync(client, vmm.Process, TimeSpan.FromSeconds(30));
    }

    /// <summary>The cgroup directories anything left under this scope's parent cgroup.</summary>
    public IReadOnlyList<string> LeftoverCgroups() =>
        Mounts().Where(m => m.Type is "cgroup" or "cgroup2").Select(m => Path.Combine(m.Point, ParentCgroup))
            .Where(Directory.Exists).SelectMany(p => Directory.EnumerateDirectories(p)).ToList();

    /// <summary>Mount points under this scope's base.</summary>
    public IReadOnlyList<string> LeftoverMounts() => Mounts().Select(m => m.Point).Where(p => p.StartsWith(Base + "/", StringComparison.Ordinal)).ToList();

    public async ValueTask DisposeAsync()
    {
        foreach (var execDir in Directory.EnumerateDirectories(Base).Where(d => d != Files))
        {
            foreach (var instance in Directory.EnumerateDirectories(execDir))
            {
                var layout = new JailLayout(Base, Path.GetFileName(execDir), Path.GetFileName(instance));
                if (JailedVmm.FindLiveUser(layout) is { } pid && ProcFs.TryGetIdentity(pid) is { } identity
                    && VmmProcess.TryAttach(identity, "/dev/null") is { } vmm)
                {
                    await using (vmm)
                        await vmm.KillAsync();
                }
            }
        }

        foreach (var mount in LeftoverMounts().OrderByDescending(m => m.Length))
            _ = Kiln.Interop.LibC.Umount2(mount, Kiln.Interop.LibC.MNT_DETACH);
        foreach (var point in Mounts().Where(m => m.Type is "cgroup" or "cgroup2").Select(m => Path.Combine(m.Point, ParentCgroup)).Where(Directory.Exists))
        {
            await Cgroups.RemoveAsync([.. Directory.EnumerateDirectories(point), point], TimeSpan.FromSeconds(10), TimeProvider.System);
        }

        Directory.Delete(Base, recursive: true);
    }

    private static IEnumerable<(string Point, string Type)> Mounts() =>
        System.IO.File.ReadLines("/proc/self/mounts").Select(l => l.Split(' ')).Select(f => (f[1], f[2]));
}
