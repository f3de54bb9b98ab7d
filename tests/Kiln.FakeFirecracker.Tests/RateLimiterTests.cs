using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>
/// Rate limiters as Firecracker keeps them (vmm_config/mod.rs): a bucket TokenBucket::new refuses is no bucket; a
/// PATCH replaces the buckets it names, removes the ones it names with size 0, and keeps the others.
/// </summary>
public sealed class RateLimiterTests
{
    private static JsonNode? DriveLimiter(string config, string id) =>
        JsonNode.Parse(config)!["drives"]!.AsArray().Single(d => d!["drive_id"]!.GetValue<string>() == id)!["rate_limiter"];

    [Fact]
    public async Task A_drive_patch_replaces_the_buckets_it_names_keeps_the_others_and_removes_zero_sized_ones()
    {
        using var dir = new TempDir();
        var data = dir.File("data.img", 1 << 20);
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/drives/data", $$$$"""{"drive_id": "data", "path_on_host": "{{{{data}}}}", "is_root_device": false, "is_read_only": false, "rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}, "ops": {"size": 0, "refill_time": 100}}}""");
        var atBoot = DriveLimiter((await fc.Get("/vm/config")).Body, "data");
        await fc.BootAsync();

        await fc.Ok("PATCH", "/drives/data", """{"drive_id": "data", "rate_limiter": {"ops": {"size": 50, "refill_time": 1000, "one_time_burst": 0}}}""");
        var merged = DriveLimiter((await fc.Get("/vm/config")).Body, "data");
        await fc.Ok("PATCH", "/drives/data", """{"drive_id": "data", "rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}""");
        var withoutBandwidth = DriveLimiter((await fc.Get("/vm/config")).Body, "data");
        await fc.Ok("PATCH", "/drives/data", """{"drive_id": "data", "rate_limiter": {"ops": {"size": 0, "refill_time": 0}}}""");
        var none = DriveLimiter((await fc.Get("/vm/config")).Body, "data");

        Assert.Equal("""{"bandwidth":{"size":1000,"one_time_burst":null,"refill_time":100},"ops":null}""", atBoot!.ToJsonString());
        Assert.Equal("""{"bandwidth":{"size":1000,"one_time_burst":null,"refill_time":100},"ops":{"size":50,"one_time_burst":null,"refill_time":1000}}""", merged!.ToJsonString());
        Assert.Equal("""{"bandwidth":null,"ops":{"size":50,"one_time_burst":null,"refill_time":1000}}""", withoutBandwidth!.ToJsonString());
        Assert.Null(none);
    }

    [Fact]
    public async Task An_interface_patch_of_one_direction_leaves_the_other_as_it_was()
    {
        Assert.SkipUnless(Environment.UserName == "root", "the stand-in opens TAPs as Firecracker does: root only");
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/network-interfaces/eth0", $$$$"""{"iface_id": "eth0", "host_dev_name": "{{{{Fc.UniqueTap()}}}}", "rx_rate_limiter": {"ops": {"size": 10, "refill_time": 100}}}""");
        await fc.BootAsync();

        await fc.Ok("PATCH", "/network-interfaces/eth0", """{"iface_id": "eth0", "tx_rate_limiter": {"bandwidth": {"size": 5, "refill_time": 5, "one_time_burst": 7}}}""");
        var net = JsonNode.Parse((await fc.Get("/vm/config")).Body)!["network-interfaces"]![0]!;

        Assert.Equal("""{"bandwidth":null,"ops":{"size":10,"one_time_burst":null,"refill_time":100}}""", net["rx_rate_limiter"]!.ToJsonString());
        Assert.Equal("""{"bandwidth":{"size":5,"one_time_burst":7,"refill_time":5},"ops":null}""", net["tx_rate_limiter"]!.ToJsonString());
    }
}
