// What a snapshot restore loads and how: the v1.16 PUT /snapshot/load options, plus the bind mounts a clone needs
// so that Firecracker, opening the drive paths the snapshot recorded, finds this VM's own copies.
using Kiln.Api;

namespace Kiln.Vm;

/// <summary>The two files <c>PUT /snapshot/create</c> writes.</summary>
/// <param name="StatePath">The microVM state file.</param>
/// <param name="MemoryPath">The guest memory file (a full snapshot's, or a base with diffs merged into it).</param>
public sealed record SnapshotFiles(string StatePath, string MemoryPath);

/// <summary>One file a restored VMM must see at another path: <paramref name="Source"/> bound over <paramref name="RecordedPath"/>.</summary>
/// <param name="RecordedPath">The path the snapshot recorded. Without a jail it must exist (a bind mount needs a target);
/// under a jail it is a path inside the chroot, made there (a jailed VM's <c>/drives/&lt;id&gt;</c>, or a plain VM's
/// host path recreated inside).</param>
/// <param name="Source">This VM's own file.</param>
public sealed record DriveBinding(string RecordedPath, string Source)
{
    /// <summary>
    /// A read-only drive every restore of the snapshot shares: under a jail it is exposed without changing its owner
    /// or mode (<see cref="Kiln.Host.ChrootFiles.ExposeShared"/>); without one it needs no binding (it is at its path).
    /// </summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// Whether <paramref name="recordedPath"/> can be made inside a chroot as it is: absolute, with no <c>.</c> or
    /// <c>..</c> parts and no NUL (the one rule for a recorded drive path, checked by every layer that takes one).
    /// </summary>
    public static bool IsPlainAbsolutePath(string? recordedPath) =>
        recordedPath is { Length: > 0 } path && path[0] == '/' && !path.Contains('\0') && !path.Split('/').Any(p => p is "." or "..");
}

/// <summary>How a snapshot is loaded.</summary>
public sealed record RestoreOptions
{
    /// <summary>New TAP devices for the snapshot's interfaces (<c>network_overrides</c>).</summary>
    public IReadOnlyList<NetworkOverride> NetworkOverrides { get; init; } = [];

    /// <summary>A new Unix socket for the snapshot's vsock (<c>vsock_override</c>); the recorded one when null.</summary>
    public string? VsockUdsPath { get; init; }

    /// <summary>Track dirty pages after the load, so that a later <see cref="SnapshotType.Diff"/> snapshot is possible.</summary>
    public bool TrackDirtyPages { get; init; }

    /// <summary>x86_64: advance the guest's kvmclock by the wall-clock time since the snapshot (<c>clock_realtime</c>).</summary>
    public bool ClockRealtime { get; init; }

    /// <summary>Resume at once (<c>resume_vm</c>, the result is Running); otherwise the result is Paused.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>
    /// Files seen at other paths: when any is given the VMM starts in a private mount namespace and each
    /// <see cref="DriveBinding.Source"/> is bound over its <see cref="DriveBinding.RecordedPath"/> before the load.
    /// </summary>
    public IReadOnlyList<DriveBinding> DriveBindings { get; init; } = [];

    /// <summary>
    /// Restore under Firecracker's jailer (as <see cref="MachineDescription.Jail"/> boots under it). The state and
    /// memory files are made visible inside the chroot (<c>/snapshot/state</c>, <c>/snapshot/mem</c>) as shared files:
    /// a hard link where the file system and their mode allow, so clones still share the memory file's pages; every
    /// <see cref="DriveBindings"/> entry is made visible at its recorded path inside the chroot (the VMM sees nothing
    /// else, so under a jail every drive the snapshot recorded needs one, read-only ones too); the vsock override, API
    /// socket, log and metrics FIFO live inside the chroot, and <see cref="MicrovmOptions.NetworkNamespacePath"/> becomes
    /// the jailer's <c>--netns</c>.
    /// </summary>
    public Kiln.Vmm.JailSettings? Jail { get; init; }

    /// <summary>Refuses options no load could use, naming the property.</summary>
    /// <exception cref="ArgumentException">A path is empty, a socket path too long, or an override incomplete.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(NetworkOverrides, nameof(NetworkOverrides));
        foreach (var n in NetworkOverrides)
        {
            if (string.IsNullOrEmpty(n?.IfaceId) || string.IsNullOrEmpty(n.HostDevName))
                throw new ArgumentException("Each network override needs an interface id and a TAP name.", nameof(NetworkOverrides));
        }
        if (VsockUdsPath is not null)
            UnixSocketPath.Validate(VsockUdsPath, nameof(VsockUdsPath));
        ArgumentNullException.ThrowIfNull(DriveBindings, nameof(DriveBindings));
        foreach (var b in DriveBindings)
        {
            if (string.IsNullOrEmpty(b?.RecordedPath) || string.IsNullOrEmpty(b.Source))
                throw new ArgumentException("Each drive binding needs a recorded path and a source.", nameof(DriveBindings));
            if (Jail is not null && !DriveBinding.IsPlainAbsolutePath(b.RecordedPath))
                throw new ArgumentException($"The recorded path '{b.RecordedPath}' must be absolute, without . or .. parts, to be made inside a jail.", nameof(DriveBindings));
        }
        if (Jail is not null && DriveBindings.Select(b => b.RecordedPath).Distinct(StringComparer.Ordinal).Count() != DriveBindings.Count)
            throw new ArgumentException("Two drive bindings name one recorded path.", nameof(DriveBindings));
    }

    internal SnapshotLoadParams ToLoadParams(SnapshotFiles snapshot) => new()
    {
        SnapshotPath = snapshot.StatePath,
        MemBackend = new MemoryBackend { BackendType = MemoryBackendType.File, BackendPath = snapshot.MemoryPath },
        TrackDirtyPages = TrackDirtyPages ? true : null,
        ResumeVm = Resume,
        NetworkOverrides = NetworkOverrides.Count == 0 ? null : NetworkOverrides,
        VsockOverride = VsockUdsPath is null ? null : new VsockOverride { UdsPath = VsockUdsPath },
        ClockRealtime = ClockRealtime ? true : null,
    };
}
