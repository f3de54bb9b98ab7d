// Rate limits of a sandbox's drives and interfaces in the driver's terms, and the checks they pass before they reach
// Firecracker. Firecracker turns a bucket it cannot use (size or refill time 0, a refill time overflowing u64
// nanoseconds) into no limit at all without a word, at boot; after boot the same bucket removes the limit. So at boot
// every bucket must be usable, and at run time a bucket is usable or exactly TokenBucketLimit.Unlimited.
using Kiln.Api;

namespace Kiln.Sandbox;

/// <summary>A device's rate limit: a bytes bucket and an operations bucket, either of which may be absent.</summary>
/// <remarks>In a run-time update an absent bucket stays as it is; <see cref="TokenBucketLimit.Unlimited"/> removes it.</remarks>
public sealed record RateLimit
{
    /// <summary>Bytes: <see cref="TokenBucketLimit.Size"/> bytes per <see cref="TokenBucketLimit.RefillTimeMs"/>.</summary>
    public TokenBucketLimit? Bandwidth { get; init; }

    /// <summary>Operations (block requests, network frames) per refill time.</summary>
    public TokenBucketLimit? Ops { get; init; }
}

/// <summary>A drive's rate limit as Firecracker reports it (null: none).</summary>
/// <param name="DriveId">The Firecracker drive id (<c>rootfs</c>, <c>drive_N</c> of the pool, <c>disk_N</c> or a given id).</param>
/// <param name="Limit">The drive's limit; null when it has none.</param>
public sealed record DriveRateLimit(string DriveId, RateLimit? Limit);

/// <summary>An interface's rate limits as Firecracker reports them (null: none).</summary>
/// <param name="InterfaceId">The Firecracker interface id (<c>sandbox_net</c>, <c>ethN</c> or a given id).</param>
/// <param name="Receive">What the guest receives; null when unlimited.</param>
/// <param name="Transmit">What the guest sends; null when unlimited.</param>
public sealed record InterfaceRateLimits(string InterfaceId, RateLimit? Receive, RateLimit? Transmit);

/// <summary>Every drive's and interface's rate limits of a running VM.</summary>
/// <param name="Drives">The drives, in Firecracker's order.</param>
/// <param name="Interfaces">The network interfaces, in Firecracker's order.</param>
public sealed record SandboxRateLimits(IReadOnlyList<DriveRateLimit> Drives, IReadOnlyList<InterfaceRateLimits> Interfaces);

/// <summary>Checks and conversions of <see cref="RateLimit"/>s.</summary>
public static class RateLimits
{
    /// <summary>Refuses a boot-time bucket Firecracker would not apply, naming <c>property.Field</c>.</summary>
    /// <exception cref="SandboxConfigurationException">An unusable bucket.</exception>
    public static void ValidateAtBoot(string property, TokenBucketLimit? bucket) => Check(property, bucket, runTime: false);

    /// <summary>
    /// Refuses a run-time update Firecracker would not do as asked, naming <c>property.Bucket.Field</c>; an empty one
    /// (no bucket at all) too, since it would change nothing.
    /// </summary>
    /// <exception cref="SandboxConfigurationException">An unusable bucket, or nothing to change.</exception>
    public static void ValidateUpdate(string property, RateLimit? limit)
    {
        if (limit is null)
            return;
        if (limit.Bandwidth is null && limit.Ops is null)
            throw new SandboxConfigurationException(property, "names neither Bandwidth nor Ops: there is nothing to change");
        Check($"{property}.{nameof(RateLimit.Bandwidth)}", limit.Bandwidth, runTime: true);
        Check($"{property}.{nameof(RateLimit.Ops)}", limit.Ops, runTime: true);
    }

    /// <summary>The wire limiter for a limit (null for none).</summary>
    public static RateLimiter? ToApi(RateLimit? limit) => limit is null ? null : ToApi(limit.Bandwidth, limit.Ops);

    /// <summary>The wire limiter for two buckets (null when both are absent).</summary>
    public static RateLimiter? ToApi(TokenBucketLimit? bandwidth, TokenBucketLimit? ops) =>
        bandwidth is null && ops is null ? null : new RateLimiter { Bandwidth = ToApi(bandwidth), Ops = ToApi(ops) };

    /// <summary>A limit from Firecracker's limiter; null when it limits nothing.</summary>
    public static RateLimit? FromApi(RateLimiter? limiter) =>
        limiter is null || (limiter.Bandwidth is null && limiter.Ops is null)
            ? null
            : new RateLimit { Bandwidth = FromApi(limiter.Bandwidth), Ops = FromApi(limiter.Ops) };

    private static TokenBucket? ToApi(TokenBucketLimit? bucket) => bucket is null ? null
        : bucket.IsUnlimited ? RateLimiterRules.Removal
        : new TokenBucket { Size = bucket.Size, RefillTime = bucket.RefillTimeMs, OneTimeBurst = bucket.OneTimeBurst };

    private static TokenBucketLimit? FromApi(TokenBucket? bucket) =>
        bucket is null ? null : new TokenBucketLimit(bucket.Size, bucket.RefillTime, bucket.OneTimeBurst is 0 ? null : bucket.OneTimeBurst);

    private static void Check(string property, TokenBucketLimit? bucket, bool runTime)
    {
        if (bucket is null || (runTime && bucket.IsUnlimited))
            return;
        if (bucket.Size <= 0)
            throw Bad(property, nameof(TokenBucketLimit.Size), $"{bucket.Size} must be at least 1 (Firecracker treats 0 as no limit{(runTime ? "; TokenBucketLimit.Unlimited removes one" : "")})");
        if (bucket.RefillTimeMs <= 0)
            throw Bad(property, nameof(TokenBucketLimit.RefillTimeMs), $"{bucket.RefillTimeMs} ms must be at least 1 (Firecracker treats 0 as no limit)");
        if (bucket.RefillTimeMs > RateLimiterRules.MaxRefillTimeMs)
            throw Bad(property, nameof(TokenBucketLimit.RefillTimeMs), $"{bucket.RefillTimeMs} ms is more than Firecracker can use ({RateLimiterRules.MaxRefillTimeMs}; it would apply no limit)");
        if (bucket.OneTimeBurst is < 0)
            throw Bad(property, nameof(TokenBucketLimit.OneTimeBurst), $"{bucket.OneTimeBurst} must not be negative");
    }

    private static SandboxConfigurationException Bad(string property, string field, string message) => new($"{property}.{field}", message);
}
