// kiln limit: rate limits shown and changed at run time on the stand-in.
using System.Text.Json;

namespace Kiln.Cli.Tests;

public sealed class LimitCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private static JsonElement Drive(KilnResult result, string id) =>
        result.Json().GetProperty("drives").EnumerateArray().Single(d => d.GetProperty("id").GetString() == id);

    [Fact]
    public async Task Limit_changes_a_drives_buckets_one_at_a_time_and_off_removes_one()
    {
        await _root.RunDetachedAsync("lim");

        var before = await _root.RunAsync("limit", "lim", "--json");
        var set = await _root.RunAsync("limit", "lim", "--drive", "rootfs", "--bandwidth", "10M/1s,burst=20M", "--ops", "500/100ms", "--json");
        var off = await _root.RunAsync("limit", "lim", "--drive", "rootfs", "--bandwidth", "off", "--json");
        var table = await _root.RunAsync("limit", "lim");

        Assert.True(before.ExitCode == 0, before.ToString());
        Assert.Equal(JsonValueKind.Null, Drive(before, "rootfs").GetProperty("bandwidth").ValueKind);
        Assert.True(set.ExitCode == 0, set.ToString());
        var bandwidth = Drive(set, "rootfs").GetProperty("bandwidth");
        Assert.Equal((10L << 20, 1000L, 20L << 20), (bandwidth.GetProperty("size").GetInt64(), bandwidth.GetProperty("refillTimeMs").GetInt64(), bandwidth.GetProperty("oneTimeBurst").GetInt64()));
        Assert.Equal(500, Drive(set, "rootfs").GetProperty("ops").GetProperty("size").GetInt64());
        Assert.True(off.ExitCode == 0, off.ToString());
        Assert.Equal(JsonValueKind.Null, Drive(off, "rootfs").GetProperty("bandwidth").ValueKind);
        Assert.Equal(100, Drive(off, "rootfs").GetProperty("ops").GetProperty("refillTimeMs").GetInt64());
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Matches(@"rootfs\s.*drive\s.*-\s.*500/100ms", table.Stdout);
        Assert.Contains("drive_0", table.Stdout);
    }

    [Theory]
    [InlineData("--drive|rootfs|--bandwidth|fast", "--bandwidth 'fast' is not a rate")]
    [InlineData("--drive|rootfs|--ops|0/1s", "--ops '0/1s': the size must be at least 1")]
    [InlineData("--drive|rootfs|--ops|10/0ms", "the period must be at least 1ms")]
    [InlineData("--drive|rootfs|--ops|10/5h", "is not a rate")]
    [InlineData("--drive|rootfs", "--bandwidth RATE and/or --ops RATE")]
    [InlineData("--bandwidth|1M", "need the device they limit")]
    [InlineData("--drive|rootfs|--net|eth0|--ops|1", "one at a time")]
    [InlineData("--drive|rootfs|--rx|--ops|1", "need --net")]
    [InlineData("--drive|root-fs|--ops|1", "DriveId")]
    public async Task Bad_limits_are_usage_errors_naming_what_is_wrong(string args, string message)
    {
        await _root.RunDetachedAsync("bad");

        var result = await _root.RunAsync(["limit", "bad", .. args.Split('|')]);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(message, result.Stderr);
    }

    [Fact]
    public async Task A_device_the_vm_does_not_have_fails_naming_the_ones_it_has()
    {
        await _root.RunDetachedAsync("nodev");

        var result = await _root.RunAsync("limit", "nodev", "--net", "eth0", "--tx", "--ops", "10");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("no network interface 'eth0' (its interfaces: none)", result.Stderr);
    }

    [Fact]
    public async Task Limit_on_a_stopped_sandbox_fails()
    {
        await _root.RunDetachedAsync("stopped");
        await _root.RunAsync("stop", "stopped");

        var result = await _root.RunAsync("limit", "stopped", "--drive", "rootfs", "--ops", "10");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("Stopped", result.Stderr);
    }
}
