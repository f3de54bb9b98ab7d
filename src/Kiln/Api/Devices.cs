// Small single-instance devices: vsock, entropy, serial, memory hot-plug.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Hybrid vsock backed by a Unix socket: body of <c>PUT /vsock</c> (spec definition <c>Vsock</c>).</summary>
public sealed record Vsock
{
    /// <summary>Guest CID (3 or more).</summary>
    public required uint GuestCid { get; init; }

    /// <summary>Unix socket Firecracker binds at once for host-initiated connections; guest-initiated ones go to <c>{uds_path}_{port}</c>.</summary>
    public required string UdsPath { get; init; }

    /// <summary>Deprecated id of the device.</summary>
    public string? VsockId { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>virtio-rng device: body of <c>PUT /entropy</c> (spec definition <c>EntropyDevice</c>).</summary>
public sealed record EntropyDevice
{
    /// <summary>Rate limiter of the device.</summary>
    public RateLimiter? RateLimiter { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Serial console output: body of <c>PUT /serial</c> (spec definition <c>SerialDevice</c>).</summary>
public sealed record SerialDevice
{
    /// <summary>File or named pipe the serial output goes to (instead of Firecracker's stdout).</summary>
    public string? SerialOutPath { get; init; }

    /// <summary>Rate limit of the output; excess bytes are dropped and counted in the metrics.</summary>
    public TokenBucket? RateLimiter { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>virtio-mem device: body of <c>PUT /hotplug/memory</c> (spec definition <c>MemoryHotplugConfig</c>).</summary>
public sealed record MemoryHotplugConfig
{
    /// <summary>Total hot-pluggable memory in MiB.</summary>
    public int? TotalSizeMib { get; init; }

    /// <summary>Slot size in MiB (at least 128, the default): the host-side granularity.</summary>
    public int? SlotSizeMib { get; init; }

    /// <summary>Block size in MiB (at least 2, the default): the guest-side granularity.</summary>
    public int? BlockSizeMib { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Body of <c>PATCH /hotplug/memory</c> (spec definition <c>MemoryHotplugSizeUpdate</c>).</summary>
public sealed record MemoryHotplugSizeUpdate
{
    /// <summary>New requested size of the hot-plugged region in MiB.</summary>
    public int? RequestedSizeMib { get; init; }
}

/// <summary>Answer of <c>GET /hotplug/memory</c> (spec definition <c>MemoryHotplugStatus</c>).</summary>
public sealed record MemoryHotplugStatus
{
    /// <summary>Total hot-pluggable memory in MiB.</summary>
    public int? TotalSizeMib { get; init; }

    /// <summary>Slot size in MiB.</summary>
    public int? SlotSizeMib { get; init; }

    /// <summary>Block size in MiB.</summary>
    public int? BlockSizeMib { get; init; }

    /// <summary>Memory plugged now, in MiB.</summary>
    public int? PluggedSizeMib { get; init; }

    /// <summary>Memory requested, in MiB.</summary>
    public int? RequestedSizeMib { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
