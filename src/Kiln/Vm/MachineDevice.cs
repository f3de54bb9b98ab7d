// The devices of a machine description, in the order they are attached: Firecracker names virtio devices (and the
// guest names its block devices) by that order, so the description keeps one ordered list rather than one per kind.
using Kiln.Api;

namespace Kiln.Vm;

/// <summary>A device a microVM boots with.</summary>
/// <remarks>
/// <see cref="Step"/> names the boot step that attaches it (a trace span and, on failure, the step a boot error
/// names). Consecutive devices with the same label are attached by one step; without a label a device gets a step of
/// its own (<c>drive-&lt;id&gt;</c>, <c>network-&lt;id&gt;</c>, <c>vsock</c>).
/// </remarks>
public abstract record MachineDevice
{
    private protected MachineDevice() { }

    /// <summary>The boot step that attaches this device, or null for one of its own.</summary>
    public string? Step { get; init; }

    /// <summary>The step name this device is attached by.</summary>
    public abstract string StepName { get; }
}

/// <summary>A block device (<c>PUT /drives/{drive_id}</c>).</summary>
/// <param name="Drive">The drive as Firecracker takes it.</param>
public sealed record MachineDrive(Drive Drive) : MachineDevice
{
    /// <inheritdoc />
    public override string StepName => Step ?? "drive-" + Drive.DriveId;
}

/// <summary>A network interface (<c>PUT /network-interfaces/{iface_id}</c>).</summary>
/// <param name="Interface">The interface as Firecracker takes it.</param>
public sealed record MachineNetworkInterface(NetworkInterface Interface) : MachineDevice
{
    /// <inheritdoc />
    public override string StepName => Step ?? "network-" + Interface.IfaceId;
}

/// <summary>The vsock device (<c>PUT /vsock</c>); a microVM has at most one.</summary>
/// <param name="Vsock">The device as Firecracker takes it.</param>
public sealed record MachineVsock(Vsock Vsock) : MachineDevice
{
    /// <inheritdoc />
    public override string StepName => Step ?? "vsock";
}
