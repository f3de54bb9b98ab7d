using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Body of <c>PUT /network-interfaces/{iface_id}</c> and an entry of <c>GET /vm/config</c> (spec definition <c>NetworkInterface</c>).</summary>
public sealed record NetworkInterface
{
    /// <summary>The interface's id; also the path segment.</summary>
    public required string IfaceId { get; init; }

    /// <summary>Name of the host TAP device (at most 15 bytes); Firecracker opens it when the interface is PUT.</summary>
    public required string HostDevName { get; init; }

    /// <summary>MAC address the guest sees, e.g. <c>06:00:AC:10:00:02</c>.</summary>
    public string? GuestMac { get; init; }

    /// <summary>MTU advertised to the guest (68–65535); absent means the guest's default.</summary>
    public int? Mtu { get; init; }

    /// <summary>Rate limiter of received traffic.</summary>
    public RateLimiter? RxRateLimiter { get; init; }

    /// <summary>Rate limiter of transmitted traffic.</summary>
    public RateLimiter? TxRateLimiter { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Body of <c>PATCH /network-interfaces/{iface_id}</c> after boot: new rate limiters (spec definition <c>PartialNetworkInterface</c>).</summary>
public sealed record PartialNetworkInterface
{
    /// <summary>The interface's id; also the path segment.</summary>
    public required string IfaceId { get; init; }

    /// <summary>New rate limiter of received traffic.</summary>
    public RateLimiter? RxRateLimiter { get; init; }

    /// <summary>New rate limiter of transmitted traffic.</summary>
    public RateLimiter? TxRateLimiter { get; init; }
}
