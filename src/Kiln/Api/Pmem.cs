using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Body of <c>PUT /pmem/{id}</c> and an entry of <c>GET /vm/config</c> (spec definition <c>Pmem</c>).</summary>
public sealed record Pmem
{
    /// <summary>The device's id; also the path segment.</summary>
    public required string Id { get; init; }

    /// <summary>Host path of the backing file.</summary>
    public required string PathOnHost { get; init; }

    /// <summary>Whether the guest boots from this device.</summary>
    public bool? RootDevice { get; init; }

    /// <summary>Whether the backing file is mapped read-only.</summary>
    public bool? ReadOnly { get; init; }

    /// <summary>Rate limiter of the device.</summary>
    public RateLimiter? RateLimiter { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Body of <c>PATCH /pmem/{id}</c> after boot: a new rate limiter (spec definition <c>PartialPmem</c>).</summary>
public sealed record PartialPmem
{
    /// <summary>The device's id; also the path segment.</summary>
    public required string Id { get; init; }

    /// <summary>New rate limiter.</summary>
    public RateLimiter? RateLimiter { get; init; }
}
