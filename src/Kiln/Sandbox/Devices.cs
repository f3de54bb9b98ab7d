using System.Text.Json.Serialization;

namespace Kiln.Sandbox;

/// <summary>A device a sandbox's VM can be given: <see cref="BlockDevice"/>, <see cref="NetworkDevice"/>, <see cref="VsockDevice"/>.</summary>
/// <remarks>
/// Serialised with a <c>kind</c> discriminator (<c>block</c>, <c>network</c>, <c>vsock</c>): the state file keeps a
/// sandbox's boot-time devices so a driver in another process can start it again with them.
/// </remarks>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(BlockDevice), "block")]
[JsonDerivedType(typeof(NetworkDevice), "network")]
[JsonDerivedType(typeof(VsockDevice), "vsock")]
public abstract record HypervisorDevice;

/// <summary>A block drive backed by a host file.</summary>
/// <param name="HostPath">The backing file on the host.</param>
public sealed record BlockDevice(string HostPath) : HypervisorDevice
{
    /// <summary>Attach read-only.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>The Firecracker drive id for a boot-time drive; generated when null.</summary>
    public string? Id { get; init; }

    /// <summary>For hot-plug removal: the pool slot the drive occupies.</summary>
    public int? PoolSlot { get; init; }

    /// <summary>Boot-time bandwidth limit in bytes (changed at run time with <see cref="FirecrackerHypervisor.UpdateDriveRateLimitAsync"/>).</summary>
    public TokenBucketLimit? Bandwidth { get; init; }

    /// <summary>Boot-time operations limit (requests).</summary>
    public TokenBucketLimit? Ops { get; init; }
}

/// <summary>A token bucket: <paramref name="Size"/> tokens refilled every <paramref name="RefillTimeMs"/> ms.</summary>
public sealed record TokenBucketLimit(long Size, long RefillTimeMs, long? OneTimeBurst = null)
{
    /// <summary>
    /// At run time (<see cref="FirecrackerHypervisor.UpdateDriveRateLimitAsync"/>,
    /// <see cref="FirecrackerHypervisor.UpdateInterfaceRateLimitsAsync"/>): remove this bucket's limit. Refused at boot,
    /// where leaving the bucket out says the same.
    /// </summary>
    public static TokenBucketLimit Unlimited { get; } = new(0, 0);

    /// <summary>Whether this is <see cref="Unlimited"/>.</summary>
    public bool IsUnlimited => Size == 0 && RefillTimeMs == 0 && OneTimeBurst is null or 0;
}

/// <summary>A network endpoint backed by a host TAP device.</summary>
/// <param name="TapName">The host TAP device name (at most 15 bytes).</param>
public sealed record NetworkDevice(string TapName) : HypervisorDevice
{
    /// <summary>The Firecracker interface id; generated (eth0, eth1, …) when null.</summary>
    public string? Id { get; init; }

    /// <summary>The guest MAC address (xx:xx:xx:xx:xx:xx); Firecracker picks none when null.</summary>
    public string? MacAddress { get; init; }

    /// <summary>Receive bandwidth limit in bytes.</summary>
    public TokenBucketLimit? RxBandwidth { get; init; }

    /// <summary>Transmit bandwidth limit in bytes.</summary>
    public TokenBucketLimit? TxBandwidth { get; init; }

    /// <summary>Receive operations limit.</summary>
    public TokenBucketLimit? RxOps { get; init; }

    /// <summary>Transmit operations limit.</summary>
    public TokenBucketLimit? TxOps { get; init; }
}

/// <summary>A hybrid vsock: Firecracker listens on <paramref name="UdsPath"/> for host-to-guest connections.</summary>
/// <param name="GuestCid">The guest's context id (≥ 3).</param>
/// <param name="UdsPath">The host-side Unix socket path.</param>
public sealed record VsockDevice(uint GuestCid, string UdsPath) : HypervisorDevice;

/// <summary>What a hot-plug did.</summary>
public abstract record HotplugResult;

/// <summary>A block drive hot-plugged into a pool slot.</summary>
/// <param name="Slot">The pool slot index.</param>
/// <param name="DriveId">The Firecracker drive id of the slot.</param>
/// <param name="GuestDevice">The device the guest sees it as, e.g. <c>/dev/vdb</c>.</param>
/// <param name="HostPath">The backing file now in the slot.</param>
/// <param name="ReadOnly">Whether the slot was attached read-only.</param>
public sealed record BlockHotplugResult(int Slot, string DriveId, string GuestDevice, string HostPath, bool ReadOnly) : HotplugResult;
