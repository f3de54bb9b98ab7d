namespace Kiln.Api;

/// <summary>Kind of snapshot <c>PUT /snapshot/create</c> writes.</summary>
public enum SnapshotType
{
    /// <summary>All of guest memory (the default).</summary>
    Full,

    /// <summary>Only memory dirtied since the last snapshot (needs dirty page tracking).</summary>
    Diff,
}

/// <summary>Body of <c>PUT /snapshot/create</c>, only while paused (spec definition <c>SnapshotCreateParams</c>).</summary>
public sealed record SnapshotCreateParams
{
    /// <summary>File that will hold guest memory (as large as guest memory for a full snapshot).</summary>
    public required string MemFilePath { get; init; }

    /// <summary>File that will hold the microVM state.</summary>
    public required string SnapshotPath { get; init; }

    /// <summary>Kind of snapshot; Firecracker defaults to <see cref="SnapshotType.Full"/>.</summary>
    public SnapshotType? SnapshotType { get; init; }
}

/// <summary>Where guest memory comes from on a snapshot load.</summary>
public enum MemoryBackendType
{
    /// <summary>A memory file written by <c>/snapshot/create</c>.</summary>
    File,

    /// <summary>A userfaultfd handler listening on a Unix socket.</summary>
    Uffd,
}

/// <summary>Memory source of a snapshot load (spec definition <c>MemoryBackend</c>).</summary>
public sealed record MemoryBackend
{
    /// <summary>Kind of backend.</summary>
    public required MemoryBackendType BackendType { get; init; }

    /// <summary>The memory file, or the socket of the UFFD handler.</summary>
    public required string BackendPath { get; init; }
}

/// <summary>Changes the TAP device of an interface on snapshot restore (spec definition <c>NetworkOverride</c>).</summary>
public sealed record NetworkOverride
{
    /// <summary>The interface to change.</summary>
    public required string IfaceId { get; init; }

    /// <summary>The new host TAP device.</summary>
    public required string HostDevName { get; init; }
}

/// <summary>Changes the vsock's Unix socket on snapshot restore (spec definition <c>VsockOverride</c>).</summary>
public sealed record VsockOverride
{
    /// <summary>The new path of the vsock's Unix socket.</summary>
    public required string UdsPath { get; init; }
}

/// <summary>
/// Body of <c>PUT /snapshot/load</c>, only in a process that has configured nothing (spec definition
/// <c>SnapshotLoadParams</c>). Exactly one of <see cref="MemFilePath"/> and <see cref="MemBackend"/>.
/// </summary>
public sealed record SnapshotLoadParams
{
    /// <summary>File holding the microVM state.</summary>
    public required string SnapshotPath { get; init; }

    /// <summary>Memory file (deprecated; use <see cref="MemBackend"/>).</summary>
    public string? MemFilePath { get; init; }

    /// <summary>Source of guest memory.</summary>
    public MemoryBackend? MemBackend { get; init; }

    /// <summary>Deprecated spelling of <see cref="TrackDirtyPages"/>.</summary>
    public bool? EnableDiffSnapshots { get; init; }

    /// <summary>Dirty page tracking after the load, for later diff snapshots.</summary>
    public bool? TrackDirtyPages { get; init; }

    /// <summary>Resume the VM after loading (state <c>Running</c>); without it the VM stays <c>Paused</c>.</summary>
    public bool? ResumeVm { get; init; }

    /// <summary>New TAP devices for the snapshot's interfaces.</summary>
    public IReadOnlyList<NetworkOverride>? NetworkOverrides { get; init; }

    /// <summary>New Unix socket path for the snapshot's vsock.</summary>
    public VsockOverride? VsockOverride { get; init; }

    /// <summary>x86_64: advance kvmclock by the wall-clock time elapsed since the snapshot.</summary>
    public bool? ClockRealtime { get; init; }
}
