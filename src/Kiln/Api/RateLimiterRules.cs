// What Firecracker does with a token bucket it cannot use is silent: TokenBucket::new (src/vmm/src/rate_limiter)
// returns None — no limit at all — for a size or refill_time of 0, or when refill_time * 1_000_000 overflows u64.
// Kiln refuses those before they reach Firecracker, so a limit asked for is a limit applied.
namespace Kiln.Api;

/// <summary>The checks a rate limiter passes before Kiln sends it to Firecracker.</summary>
public static class RateLimiterRules
{
    /// <summary>The longest refill time Firecracker can use: u64::MAX / 1 000 000 ms (≈ 584 years).</summary>
    public const long MaxRefillTimeMs = 18_446_744_073_709;

    /// <summary>Why <paramref name="limiter"/> would not limit what it says, with the bad field's path; null when it is fine.</summary>
    public static (string Field, string Problem)? Check(RateLimiter? limiter)
    {
        if (limiter is null)
            return null;
        return Check(limiter.Bandwidth, "Bandwidth") ?? Check(limiter.Ops, "Ops");
    }

    /// <summary>
    /// Why <paramref name="limiter"/>, sent in a PATCH after boot, would not do what it says; null when it is fine. As
    /// <see cref="Check(RateLimiter?)"/>, except that a bucket of size 0 and refill time 0 (<see cref="IsRemoval"/>)
    /// is allowed: after boot Firecracker reads it as "remove this bucket's limit" (vmm_config/mod.rs
    /// get_bucket_update: BucketUpdate::Disabled), which is a wish, not a mistake.
    /// </summary>
    public static (string Field, string Problem)? CheckUpdate(RateLimiter? limiter)
    {
        if (limiter is null)
            return null;
        return (IsRemoval(limiter.Bandwidth) ? null : Check(limiter.Bandwidth, "Bandwidth"))
            ?? (IsRemoval(limiter.Ops) ? null : Check(limiter.Ops, "Ops"));
    }

    /// <summary>The bucket that, PATCHed after boot, removes a bucket's limit: size 0, refill time 0, no burst.</summary>
    public static TokenBucket Removal => new() { Size = 0, RefillTime = 0 };

    /// <summary>Whether <paramref name="bucket"/> is <see cref="Removal"/>.</summary>
    public static bool IsRemoval(TokenBucket? bucket) =>
        bucket is { Size: 0, RefillTime: 0, OneTimeBurst: null or 0 };

    /// <summary>Why <paramref name="bucket"/> would not limit what it says; null when it is fine.</summary>
    public static (string Field, string Problem)? Check(TokenBucket? bucket, string name)
    {
        if (bucket is null)
            return null;
        if (bucket.Size <= 0)
            return ($"{name}.{nameof(TokenBucket.Size)}", $"{bucket.Size} must be at least 1 (Firecracker treats 0 as no limit)");
        if (bucket.RefillTime <= 0)
            return ($"{name}.{nameof(TokenBucket.RefillTime)}", $"{bucket.RefillTime} ms must be at least 1 (Firecracker treats 0 as no limit)");
        if (bucket.RefillTime > MaxRefillTimeMs)
            return ($"{name}.{nameof(TokenBucket.RefillTime)}", $"{bucket.RefillTime} ms is more than Firecracker can use ({MaxRefillTimeMs}; it would apply no limit)");
        if (bucket.OneTimeBurst is < 0)
            return ($"{name}.{nameof(TokenBucket.OneTimeBurst)}", $"{bucket.OneTimeBurst} must not be negative");
        return null;
    }
}
