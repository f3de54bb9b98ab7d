using System.Text.Json.Nodes;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>
/// What a device holds of a rate limiter, as Firecracker keeps it. vmm_config/mod.rs: a bucket is built by
/// rate_limiter TokenBucket::new, which makes none (no limit) for a size or refill_time of 0 or a refill_time whose
/// nanoseconds overflow u64; a one_time_burst of 0 reads back as null (TokenBucketConfig::from); a limiter without
/// buckets reads back as null (RateLimiterConfig::into_option). A PATCH (get_bucket_update) leaves an absent bucket
/// as it was (BucketUpdate::None), replaces a present one, and removes one TokenBucket::new refuses
/// (BucketUpdate::Disabled).
/// </summary>
internal static class RateLimiters
{
    private const ulong NanosPerMilli = 1_000_000;

    private static readonly string[] Buckets = ["bandwidth", "ops"];

    /// <summary>The limiter a device built from a PUT body holds (null: none).</summary>
    public static JsonNode? Built(JsonNode? limiter)
    {
        if (limiter is not JsonObject o)
        {
            return null;
        }

        var built = new JsonObject();
        foreach (var name in Buckets)
        {
            if (Bucket(o[name]) is { } bucket)
            {
                built[name] = bucket;
            }
        }

        return built.Count == 0 ? null : built;
    }

    /// <summary>The limiter a device holds after a PATCH of <paramref name="update"/> (null: the PATCH named none).</summary>
    public static JsonNode? Updated(JsonNode? current, JsonNode? update)
    {
        if (update is not JsonObject u)
        {
            return current?.DeepClone();
        }

        var result = new JsonObject();
        foreach (var name in Buckets)
        {
            var bucket = u.ContainsKey(name) && u[name] is not null ? Bucket(u[name]) : current?[name]?.DeepClone();
            if (bucket is not null)
            {
                result[name] = bucket;
            }
        }

        return result.Count == 0 ? null : result;
    }

    private static JsonObject? Bucket(JsonNode? node)
    {
        if (node is not JsonObject b)
        {
            return null;
        }

        var size = b["size"]!.GetValue<ulong>();
        var refill = b["refill_time"]!.GetValue<ulong>();
        if (size == 0 || refill == 0 || refill > ulong.MaxValue / NanosPerMilli)
        {
            return null;
        }

        var bucket = new JsonObject { ["size"] = size, ["refill_time"] = refill };
        if (b["one_time_burst"] is { } burst && burst.GetValue<ulong>() is var value && value != 0)
        {
            bucket["one_time_burst"] = value;
        }

        return bucket;
    }
}
