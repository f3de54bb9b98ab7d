// `kiln limit`'s RATE values: SIZE[/PERIOD][,burst=SIZE] or `off`. A rate is what people think in ("10M a second");
// Firecracker's token bucket is the same thing written as size tokens refilled over refill_time milliseconds.
using System.Globalization;
using Kiln.Sandbox;

namespace Kiln.Cli.Infrastructure;

internal static class RateSpecs
{
    public const string Syntax = "SIZE[/PERIOD][,burst=SIZE] (e.g. 10M/1s, 500/100ms, 1G,burst=2G) or off";

    /// <summary>The bucket a RATE names; <see cref="TokenBucketLimit.Unlimited"/> for <c>off</c>.</summary>
    /// <exception cref="UsageException">Not a RATE, or one Firecracker could not apply (naming the option).</exception>
    public static TokenBucketLimit Parse(string option, string text)
    {
        var t = text.Trim();
        if (t.Equals("off", StringComparison.OrdinalIgnoreCase))
            return TokenBucketLimit.Unlimited;
        var parts = t.Split(',');
        long? burst = null;
        if (parts.Length > 2)
            throw Bad(option, text);
        if (parts.Length == 2)
        {
            if (!parts[1].StartsWith("burst=", StringComparison.Ordinal))
                throw Bad(option, text);
            burst = Size(option, text, parts[1]["burst=".Length..]);
        }
        var rate = parts[0].Split('/');
        if (rate.Length > 2)
            throw Bad(option, text);
        var size = Size(option, text, rate[0]);
        var periodMs = rate.Length == 2 ? Period(option, text, rate[1]) : 1000;
        if (size == 0)
            throw new UsageException($"{option} '{text}': the size must be at least 1 (Firecracker would apply no limit); use '{option} off' to remove one.");
        if (periodMs == 0)
            throw new UsageException($"{option} '{text}': the period must be at least 1ms (Firecracker would apply no limit).");
        return new TokenBucketLimit(size, periodMs, burst);
    }

    /// <summary>How a bucket reads back: <c>10M/1s</c>, <c>500/100ms,burst=1K</c>.</summary>
    public static string Format(TokenBucketLimit? bucket) =>
        bucket is null ? "-"
            : $"{FormatSize(bucket.Size)}/{(bucket.RefillTimeMs % 1000 == 0 ? $"{bucket.RefillTimeMs / 1000}s" : $"{bucket.RefillTimeMs}ms")}"
              + (bucket.OneTimeBurst is { } burst and > 0 ? $",burst={FormatSize(burst)}" : "");

    private static string FormatSize(long value) =>
        value >= 1L << 30 && value % (1L << 30) == 0 ? $"{value >> 30}G"
        : value >= 1L << 20 && value % (1L << 20) == 0 ? $"{value >> 20}M"
        : value >= 1L << 10 && value % (1L << 10) == 0 ? $"{value >> 10}K"
        : value.ToString(CultureInfo.InvariantCulture);

    private static long Size(string option, string text, string part)
    {
        var (digits, shift) = part.Length > 0 && char.ToUpperInvariant(part[^1]) is var unit && unit is 'K' or 'M' or 'G'
            ? (part[..^1], unit switch { 'K' => 10, 'M' => 20, _ => 30 })
            : (part, 0);
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > long.MaxValue >> shift)
            throw Bad(option, text);
        return value << shift;
    }

    private static long Period(string option, string text, string part)
    {
        var (digits, scale) = part.EndsWith("ms", StringComparison.Ordinal) ? (part[..^2], 1L)
            : part.EndsWith('s') ? (part[..^1], 1000L)
            : throw Bad(option, text);
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > Kiln.Api.RateLimiterRules.MaxRefillTimeMs / scale)
            throw Bad(option, text);
        return value * scale;
    }

    private static UsageException Bad(string option, string text) => new($"{option} '{text}' is not a rate: {Syntax}.");
}
