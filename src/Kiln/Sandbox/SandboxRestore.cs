// A sandbox whose VM is restored instead of booted (Kata's VM factory, which Kata never built for Firecracker): from
// a template (each sandbox a clone: its own drive copies, vsock socket, API socket and console) or from the two files
// of a snapshot. It lives in the configuration, so the state file says what the sandbox was restored from, and every
// start of it (also after a stop, also by a driver in another process) restores again instead of booting a kernel.
namespace Kiln.Sandbox;

/// <summary>What a sandbox's VM is restored from, and how the snapshot is loaded.</summary>
public sealed record SandboxRestore
{
    /// <summary>A template's directory (<see cref="Kiln.Vm.Templates.MicrovmTemplate.Directory"/>): start a clone of it.</summary>
    public string? TemplateDirectory { get; init; }

    /// <summary>A snapshot's state file (with <see cref="SnapshotMemoryPath"/>), when not from a template.</summary>
    public string? SnapshotStatePath { get; init; }

    /// <summary>A snapshot's guest memory file, mapped privately (<c>mem_backend</c> File).</summary>
    public string? SnapshotMemoryPath { get; init; }

    /// <summary>Track dirty pages after the load (<c>track_dirty_pages</c>), so diff snapshots of the VM can be made.</summary>
    public bool TrackDirtyPages { get; init; }

    /// <summary>x86_64: advance the guest clock by the wall-clock time since the snapshot (<c>clock_realtime</c>).</summary>
    public bool ClockRealtime { get; init; }

    /// <summary>Resume at once (<c>resume_vm</c>): the sandbox is then Running; otherwise it is left Paused.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>
    /// Snapshot files only: where this restore finds the drives the snapshot recorded
    /// (<see cref="Kiln.Vm.RestoreOptions.DriveBindings"/>). Without a jail, a writable binding gives this sandbox its
    /// own copy at the recorded path (a bind mount in the VMM's private mount namespace) instead of the source VM's
    /// file, and a read-only one needs none. Under a jail the VMM sees only its chroot, so every drive the snapshot
    /// recorded needs a binding: each is made at its recorded path inside the chroot, read-only ones shared without
    /// changing their owner or mode. A template clone names its drives from the template's manifest instead.
    /// </summary>
    public IReadOnlyList<Kiln.Vm.DriveBinding> Drives { get; init; } = [];

    /// <summary>A template clone.</summary>
    public static SandboxRestore FromTemplate(string templateDirectory) => new() { TemplateDirectory = Path.GetFullPath(templateDirectory) };

    /// <summary>A restore of snapshot files (e.g. what <see cref="FirecrackerHypervisor.SaveAsync"/> wrote).</summary>
    public static SandboxRestore FromSnapshot(string statePath, string memoryPath) =>
        new() { SnapshotStatePath = Path.GetFullPath(statePath), SnapshotMemoryPath = Path.GetFullPath(memoryPath) };

    /// <summary>What it says it is restored from, for a person: <c>template NAME</c> or <c>snapshot STATE</c>.</summary>
    public string Describe() => TemplateDirectory is { } template ? $"template {Path.GetFileName(template)}" : $"snapshot {SnapshotStatePath}";
}
