using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>An IO rate limiter with independent bytes/s and ops/s buckets (spec definition <c>RateLimiter</c>).</summary>
public sealed record RateLimiter
{
    /// <summary>Token bucket with bytes as tokens.</summary>
    public TokenBucket? Bandwidth { get; init; }

    /// <summary>Token bucket with operations as tokens.</summary>
    public TokenBucket? Ops { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>
/// A token bucket: <see cref="Size"/> tokens refilled over <see cref="RefillTime"/> milliseconds, plus an initial
/// <see cref="OneTimeBurst"/> (spec definition <c>TokenBucket</c>).
/// </summary>
public sealed record TokenBucket
{
    /// <summary>The initial burst, consumed before refilling starts.</summary>
    public long? OneTimeBurst { get; init; }

    /// <summary>Milliseconds it takes for the bucket to refill.</summary>
    public required long RefillTime { get; init; }

    /// <summary>Total number of tokens the bucket can hold.</summary>
    public required long Size { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
