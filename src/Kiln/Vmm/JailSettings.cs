// How to run a VMM under Firecracker's jailer: an immutable record, validated by JailSettingsValidator before any
// process starts. Without one, Kiln runs firecracker directly as before.
using Kiln.Host;

namespace Kiln.Vmm;

/// <summary>Firecracker's jailer settings for one VMM (docs/jailer.md).</summary>
public sealed record JailSettings
{
    /// <summary>The <c>jailer</c> binary.</summary>
    public required string JailerPath { get; init; }

    /// <summary>The user the VMM runs as (<c>--uid</c>); must exist and must not be root.</summary>
    public required uint Uid { get; init; }

    /// <summary>The group the VMM runs as (<c>--gid</c>); must exist.</summary>
    public required uint Gid { get; init; }

    /// <summary>Where chroots are made (<c>--chroot-base-dir</c>): <c>&lt;base&gt;/&lt;exec name&gt;/&lt;id&gt;/root</c>.</summary>
    public string ChrootBaseDirectory { get; init; } = "/srv/jailer";

    /// <summary>The cgroup version (<c>--cgroup-version</c>).</summary>
    public CgroupVersion CgroupVersion { get; init; } = CgroupVersion.V1;

    /// <summary>A CPU quota in CPUs (1.5 = one and a half CPUs' time per period): <c>cpu.cfs_quota_us</c> or <c>cpu.max</c>.</summary>
    public double? CpuQuota { get; init; }

    /// <summary>A memory limit in bytes: <c>memory.limit_in_bytes</c> or <c>memory.max</c>.</summary>
    public long? MemoryLimitBytes { get; init; }

    /// <summary>The CPUs the VMM may run on (<c>cpuset.cpus</c>, e.g. <c>0-1</c>).</summary>
    public string? Cpuset { get; init; }

    /// <summary>The parent cgroup (<c>--parent-cgroup</c>); the exec file's name when null, as the jailer does.</summary>
    public string? ParentCgroup { get; init; }

    /// <summary>A network namespace to join (<c>--netns</c>), e.g. <c>/var/run/netns/NAME</c>.</summary>
    public string? NetworkNamespacePath { get; init; }

    /// <summary>
    /// Run a detached VMM in its own PID namespace (<c>--new-pid-ns</c>); it is then that namespace's init, ignores
    /// SIGTERM, and Kiln stops it with SIGHUP. An owned VMM always runs in a PID namespace Kiln makes (whose init dies
    /// with the owner; docs/jail.md), as a plain member, whatever this says.
    /// </summary>
    public bool NewPidNamespace { get; init; } = true;

    /// <summary>Largest file the VMM may create, in bytes (<c>--resource-limit fsize=</c>).</summary>
    public ulong? FileSizeLimit { get; init; }

    /// <summary>Open file limit (<c>--resource-limit no-file=</c>); the jailer's default is 2048.</summary>
    public ulong? OpenFilesLimit { get; init; }

    /// <summary>
    /// <c>--daemonize</c>: the VMM's stdin/stdout/stderr go to /dev/null, so the guest console is not captured.
    /// </summary>
    public bool Daemonize { get; init; }

    /// <summary>How the kernel, initrd, drives and hot-plugged files are made visible inside the chroot.</summary>
    public JailFileExposure FileExposure { get; init; } = JailFileExposure.HardLink;

    /// <summary>The CFS period Kiln pairs with <see cref="CpuQuota"/>, in microseconds (the kernel's default).</summary>
    public const int CpuPeriodMicroseconds = 100_000;

    /// <summary>The parent cgroup the jailer will use for an exec file of this name.</summary>
    public string EffectiveParentCgroup(string execFileName) => ParentCgroup ?? execFileName;

    /// <summary>The <c>--cgroup FILE=VALUE</c> settings, in the order given to the jailer.</summary>
    public IReadOnlyList<(string File, string Value)> CgroupValues()
    {
        var values = new List<(string, string)>();
        if (Cpuset is not null)
        {
            values.Add(("cpuset.cpus", Cpuset));
            // A v1 cpuset cgroup takes no process until it has memory nodes too: the machine's own.
            if (CgroupVersion == CgroupVersion.V1 && Cgroups.FindV1Hierarchy("cpuset") is { } cpusetRoot
                && Cgroups.TryRead(cpusetRoot, "cpuset.mems") is { Length: > 0 } mems)
                values.Add(("cpuset.mems", mems));
        }
        if (CpuQuota is { } cpus)
        {
            var quota = (long)Math.Round(cpus * CpuPeriodMicroseconds);
            values.Add(CgroupVersion == CgroupVersion.V2
                ? ("cpu.max", $"{quota} {CpuPeriodMicroseconds}")
                : ("cpu.cfs_quota_us", quota.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        if (MemoryLimitBytes is { } bytes)
            values.Add((CgroupVersion == CgroupVersion.V2 ? "memory.max" : "memory.limit_in_bytes", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return values;
    }
}
