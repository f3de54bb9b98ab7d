using Kiln.Host;

namespace Kiln.Vmm;

/// <summary>A host file the jailed VMM needs, and where it sees it.</summary>
/// <param name="HostPath">The file on the host.</param>
/// <param name="PathInJail">Its absolute path inside the chroot (what Firecracker is told).</param>
/// <param name="ReadOnly">Whether the VMM only reads it.</param>
public sealed record JailFile(string HostPath, string PathInJail, bool ReadOnly)
{
    /// <summary>
    /// Other VMMs use the file too (a template's snapshot files, a shared read-only drive): it is exposed read-only
    /// without changing its owner or mode (<see cref="ChrootFiles.ExposeShared"/>), whatever
    /// <see cref="JailSettings.FileExposure"/> says.
    /// </summary>
    public bool Shared { get; init; }
}

/// <summary>A file Kiln writes inside the chroot before the VMM starts (a <c>--config-file</c> document), read-only to the jail.</summary>
/// <param name="PathInJail">Its absolute path inside the chroot.</param>
/// <param name="Content">Its bytes.</param>
public sealed record JailWrittenFile(string PathInJail, ReadOnlyMemory<byte> Content);

/// <summary>How to launch one firecracker under the jailer.</summary>
public sealed record JailedLaunchOptions
{
    /// <summary>The jail.</summary>
    public required JailSettings Jail { get; init; }

    /// <summary>The firecracker binary (the jailer's exec file).</summary>
    public required string FirecrackerPath { get; init; }

    /// <summary>The VMM's id: the jailer's <c>--id</c>, a path part of the chroot and the cgroup's name.</summary>
    public required string Id { get; init; }

    /// <summary>Firecracker's arguments, every path in them a path inside the jail; the id is the jailer's to pass.</summary>
    public required VmmArguments Arguments { get; init; }

    /// <summary>The file receiving the output (the guest's console), on the host. Nothing arrives with --daemonize.</summary>
    public required string OutputPath { get; init; }

    /// <summary>Detached from this process (see <see cref="VmmLaunchOptions.Detached"/>).</summary>
    public bool Detached { get; init; }

    /// <summary>
    /// Detached only: a console keeper (<see cref="Vmm.ConsoleKeeper"/>) between the VMM and <see cref="OutputPath"/>,
    /// as for an unjailed VMM (<see cref="VmmLaunchOptions.ConsoleKeeper"/>). The jailer is spawned with its stdout and
    /// stderr on the keeper's FIFO and firecracker inherits them; the keeper starts once the real VMM runs and watches
    /// it. Not with <see cref="JailSettings.Daemonize"/>, whose jailer puts the VMM's stdio on /dev/null.
    /// </summary>
    public ConsoleKeeperCommand? ConsoleKeeper { get; init; }

    /// <summary>How large the console keeper lets <see cref="OutputPath"/> grow before it rotates.</summary>
    public OutputRotation OutputRotation { get; init; } = OutputRotation.Default;

    /// <summary>
    /// Detached only: a FIFO that becomes the jailer's stdin and so the VMM's, i.e. the guest's serial input
    /// (see <see cref="VmmLaunchOptions.InputPath"/>). Null: /dev/null.
    /// </summary>
    public string? InputPath { get; init; }

    /// <summary>The files to make visible inside the chroot before the VMM starts.</summary>
    public IReadOnlyList<JailFile> Files { get; init; } = [];

    /// <summary>Empty files to create inside the chroot (owned by the jail) before the VMM starts: Firecracker opens
    /// its log file without creating it.</summary>
    public IReadOnlyList<string> EmptyFiles { get; init; } = [];

    /// <summary>FIFOs to create inside the chroot (owned by the jail, mode 0600) before the VMM starts: Firecracker's
    /// metrics path, which the host reads from outside the chroot.</summary>
    public IReadOnlyList<string> Fifos { get; init; } = [];

    /// <summary>Files to write inside the chroot (owned by the jail, mode 0400) before the VMM starts.</summary>
    public IReadOnlyList<JailWrittenFile> WrittenFiles { get; init; } = [];

    /// <summary>How long the jailer may take to produce a running VMM.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Extra environment variables for the jailer (it clears the environment before exec).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }
}

/// <summary>One cgroup setting of a jailed VMM: where it is and what was asked.</summary>
/// <param name="Directory">The cgroup directory.</param>
/// <param name="File">The file (e.g. <c>cpu.cfs_quota_us</c>).</param>
/// <param name="Requested">The value given to the jailer.</param>
public sealed record JailCgroup(string Directory, string File, string Requested)
{
    /// <summary>The value the kernel reports now (null once the cgroup is gone).</summary>
    public string? ReadBack() => Cgroups.TryRead(Directory, File);
}

/// <summary>Everything needed to find, stop and clean a jailed VMM again, from another process too.</summary>
/// <param name="Layout">The jail's paths.</param>
/// <param name="Identity">The VMM process (its host PID, start time and executable inside the jail).</param>
/// <param name="Uid">The user it runs as.</param>
/// <param name="Gid">The group it runs as.</param>
/// <param name="NewPidNamespace">Whether it is a PID namespace's init (SIGTERM does nothing then).</param>
/// <param name="Cgroups">The cgroup settings the jailer applied.</param>
/// <param name="CgroupDirectories">The cgroup directories the jailer made (removed at clean-up).</param>
/// <param name="Files">The files Kiln exposed inside the chroot.</param>
public sealed record JailRecord(
    JailLayout Layout,
    ProcessIdentity Identity,
    uint Uid,
    uint Gid,
    bool NewPidNamespace,
    IReadOnlyList<JailCgroup> Cgroups,
    IReadOnlyList<string> CgroupDirectories,
    IReadOnlyList<ExposedFile> Files);
