using Kiln.Vmm;

namespace Kiln.Sandbox;

/// <summary>A pool slot: a placeholder drive attached at boot that hot-plug swaps a real backing file into.</summary>
/// <param name="Index">The slot index.</param>
/// <param name="DriveId">The Firecracker drive id (<c>drive_N</c>).</param>
/// <param name="GuestDevice">The guest's device for it, e.g. <c>/dev/vdb</c>.</param>
/// <param name="HostPath">The backing file in the slot; null while it holds its placeholder.</param>
/// <param name="ReadOnly">Whether the drive is attached read-only.</param>
public sealed record PoolSlot(int Index, string DriveId, string GuestDevice, string? HostPath, bool ReadOnly)
{
    /// <summary>
    /// True when a hot-plug or hot-unplug of this slot got no answer (cancelled, timed out): Firecracker may or may not
    /// have swapped the drive. <see cref="HostPath"/> is then the file that may be attached, kept so that no other
    /// hot-plug takes the slot; the next operation asks Firecracker. Absent otherwise.
    /// </summary>
    public bool? InDoubt { get; init; }
}

/// <summary>What the state directory says about one sandbox.</summary>
/// <param name="Id">The sandbox id.</param>
/// <param name="Directory">The sandbox directory.</param>
/// <param name="State">The recorded state; <see cref="SandboxState.Exited"/> when the recorded VMM is gone or the PID now belongs to another process.</param>
/// <param name="Pid">The VMM's PID, when one runs.</param>
/// <param name="Config">The configuration it was created with.</param>
/// <param name="StartedAt">When its VMM was started.</param>
/// <param name="SocketPath">The API socket.</param>
/// <param name="ConsolePath">The console file.</param>
/// <param name="PoolSlots">The block pool.</param>
public sealed record SandboxInfo(
    string Id,
    string Directory,
    SandboxState State,
    int? Pid,
    HypervisorConfig Config,
    DateTimeOffset? StartedAt,
    string SocketPath,
    string ConsolePath,
    IReadOnlyList<PoolSlot> PoolSlots)
{
    /// <summary>What the running guest has after the last resize (<c>kiln mem</c>); null while it has its configured memory.</summary>
    public int? GuestMemoryMiB { get; init; }

    /// <summary>The exit code of an Exited sandbox's VMM, when it is known (its owner saw it end).</summary>
    public int? ExitCode { get; init; }

    /// <summary>The signal that killed an Exited sandbox's VMM, when it is known.</summary>
    public int? ExitSignal { get; init; }

    /// <summary>
    /// Whether a pause or resume of the live VMM got no answer (the record's <see cref="SandboxStateFile.StateInDoubt"/>):
    /// <see cref="State"/> is what was known before it, and the next operation asks Firecracker.
    /// </summary>
    public bool StateInDoubt { get; init; }

    /// <summary>Who owns the VMM.</summary>
    public VmmOwnership Ownership { get; init; }

    /// <summary>
    /// The PID of the console keeper writing a detached VMM's console log (<see cref="ConsoleKeeper"/>), while it
    /// runs; null without one, or once it has ended.
    /// </summary>
    public int? ConsoleKeeperPid { get; init; }

    /// <summary>
    /// Whether the live VMM was started with a console keeper whose process has died since (SIGKILL, the OOM killer):
    /// its console log is not written until <see cref="FirecrackerHypervisor.RestartConsoleKeeperAsync"/> starts another.
    /// </summary>
    public bool ConsoleKeeperDied { get; init; }

    /// <summary>The boot-time devices (<c>AddDeviceAsync</c>), in the order every start attaches them.</summary>
    public IReadOnlyList<HypervisorDevice> Devices { get; init; } = [];

    /// <summary>The serial input FIFO of a detached VMM (absent for an owned one, whose stdin is its owner's pipe).</summary>
    public string ConsoleInputPath => new SandboxPaths(Directory).ConsoleInputPath;

    /// <summary>Firecracker's own log file (see <see cref="IHypervisor.VmmLogPath"/>).</summary>
    public string VmmLogPath => new SandboxPaths(Directory).VmmLogPath;
}
