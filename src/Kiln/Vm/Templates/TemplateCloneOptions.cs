using Kiln.Api;

namespace Kiln.Vm.Templates;

/// <summary>One clone of a template: where its files go and what it overrides.</summary>
public sealed record TemplateCloneOptions
{
    /// <summary>Its API socket, console, log, id and VMM settings (each clone its own).</summary>
    public required MicrovmOptions Microvm { get; init; }

    /// <summary>
    /// Its own directory: its copies of the writable drives (<c>drive-&lt;id&gt;</c>) and its vsock socket
    /// (<see cref="VsockPath"/>) go here. Created when missing.
    /// </summary>
    public required string Directory { get; init; }

    /// <summary>A TAP device for each of the template's network interfaces.</summary>
    public IReadOnlyList<NetworkOverride> NetworkOverrides { get; init; } = [];

    /// <summary>Track dirty pages, for diff snapshots of the clone later.</summary>
    public bool TrackDirtyPages { get; init; }

    /// <summary>x86_64: advance the guest clock by the time since the template was made.</summary>
    public bool ClockRealtime { get; init; }

    /// <summary>Resume at once (the clone is Running); otherwise it is left Paused, as a cache keeps its clones.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>
    /// Start the clone under Firecracker's jailer: the snapshot files, the clone's own drive copies and the shared
    /// read-only drives are made visible inside its chroot at the paths the snapshot recorded (Microvm's jailed
    /// restore); no private mount namespace is needed. <see cref="MicrovmOptions.Id"/> names the jail.
    /// </summary>
    public Kiln.Vmm.JailSettings? Jail { get; init; }

    /// <summary>The clone's vsock socket (what <c>vsock_override</c> gives Firecracker).</summary>
    public string VsockPath => Path.Combine(Directory, "vsock.sock");

    /// <summary>The clone's copy of the writable drive <paramref name="driveId"/>.</summary>
    public string DrivePath(string driveId) => Path.Combine(Directory, "drive-" + driveId);
}
