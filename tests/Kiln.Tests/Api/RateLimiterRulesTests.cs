using Kiln.Api;

namespace Kiln.Tests.Api;

public sealed class RateLimiterRulesTests
{
    public static TheoryData<RateLimiter, string> Refused => new()
    {
        { new RateLimiter { Bandwidth = new TokenBucket { Size = 0, RefillTime = 100 } }, "Bandwidth.Size" },
        { new RateLimiter { Bandwidth = new TokenBucket { Size = 10, RefillTime = 0 } }, "Bandwidth.RefillTime" },
        { new RateLimiter { Ops = new TokenBucket { Size = 10, RefillTime = RateLimiterRules.MaxRefillTimeMs + 1 } }, "Ops.RefillTime" },
        { new RateLimiter { Ops = new TokenBucket { Size = 10, RefillTime = 1, OneTimeBurst = -1 } }, "Ops.OneTimeBurst" },
        { new RateLimiter { Ops = new TokenBucket { Size = -5, RefillTime = 1 } }, "Ops.Size" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_bucket_firecracker_would_silently_ignore_is_refused_naming_its_field(RateLimiter limiter, string field)
    {
        Assert.Equal(field, RateLimiterRules.Check(limiter)?.Field);
    }

    [Fact]
    public void Usable_buckets_and_no_limiter_pass()
    {
        Assert.Null(RateLimiterRules.Check((RateLimiter?)null));
        Assert.Null(RateLimiterRules.Check(new RateLimiter
        {
            Bandwidth = new TokenBucket { Size = 1, RefillTime = RateLimiterRules.MaxRefillTimeMs },
            Ops = new TokenBucket { Size = 100, RefillTime = 1000, OneTimeBurst = 0 },
        }));
    }

    [Fact]
    public void After_boot_the_removal_bucket_passes_while_other_unusable_buckets_are_still_refused()
    {
        Assert.Null(RateLimiterRules.CheckUpdate(new RateLimiter { Bandwidth = RateLimiterRules.Removal, Ops = new TokenBucket { Size = 1, RefillTime = 1 } }));
        Assert.Equal("Bandwidth.Size", RateLimiterRules.Check(new RateLimiter { Bandwidth = RateLimiterRules.Removal })?.Field);
        Assert.Equal("Ops.RefillTime", RateLimiterRules.CheckUpdate(new RateLimiter { Ops = new TokenBucket { Size = 5, RefillTime = 0 } })?.Field);
        Assert.Equal("Ops.Size", RateLimiterRules.CheckUpdate(new RateLimiter { Ops = new TokenBucket { Size = 0, RefillTime = 0, OneTimeBurst = 5 } })?.Field);
    }
}
