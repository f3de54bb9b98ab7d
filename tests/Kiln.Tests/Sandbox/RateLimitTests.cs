using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Sandbox;

/// <summary>Rate limits of drives and interfaces through the driver: at boot, and changed while the VM runs.</summary>
public sealed class RateLimitTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string UniqueTap() => "kt" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(5));

    private static async Task<FirecrackerHypervisor> StartedAsync(TempRoot root, string id, params HypervisorDevice[] devices)
    {
        var driver = new FirecrackerHypervisor();
        await driver.CreateAsync(id, SandboxTarget.Fake(root).Config(root), Ct);
        foreach (var device in devices)
            await driver.AddDeviceAsync(device, Ct);
        await driver.StartAsync(Ct);
        return driver;
    }

    [Fact]
    public async Task A_boot_time_drive_limit_reaches_firecracker_and_run_time_changes_merge_bucket_by_bucket()
    {
        using var root = new TempRoot();
        var disk = LifecycleTests.MakeDisk(root, "d.img", 1);
        await using var driver = await StartedAsync(root, "rl1", new BlockDevice(disk) { Id = "data", Bandwidth = new TokenBucketLimit(1 << 20, 1000) });
        var atBoot = await driver.GetRateLimitsAsync(Ct);

        var withOps = await driver.UpdateDriveRateLimitAsync("data", new RateLimit { Ops = new TokenBucketLimit(100, 1000, 50) }, Ct);
        var faster = await driver.UpdateDriveRateLimitAsync("data", new RateLimit { Bandwidth = new TokenBucketLimit(10 << 20, 500) }, Ct);
        var unlimited = await driver.UpdateDriveRateLimitAsync("data", new RateLimit { Bandwidth = TokenBucketLimit.Unlimited }, Ct);
        var none = await driver.UpdateDriveRateLimitAsync("data", new RateLimit { Ops = TokenBucketLimit.Unlimited }, Ct);
        var rootfs = await driver.UpdateDriveRateLimitAsync(FirecrackerHypervisor.RootfsDriveId, new RateLimit { Ops = new TokenBucketLimit(7, 70) }, Ct);
        var final = await driver.GetRateLimitsAsync(Ct);
        await driver.StopAsync(Ct);

        Assert.Equal(new RateLimit { Bandwidth = new TokenBucketLimit(1 << 20, 1000) }, atBoot.Drives.Single(d => d.DriveId == "data").Limit);
        Assert.Null(atBoot.Drives.Single(d => d.DriveId == FirecrackerHypervisor.RootfsDriveId).Limit);
        Assert.Equal(new RateLimit { Bandwidth = new TokenBucketLimit(1 << 20, 1000), Ops = new TokenBucketLimit(100, 1000, 50) }, withOps.Limit);
        Assert.Equal(new RateLimit { Bandwidth = new TokenBucketLimit(10 << 20, 500), Ops = new TokenBucketLimit(100, 1000, 50) }, faster.Limit);
        Assert.Equal(new RateLimit { Ops = new TokenBucketLimit(100, 1000, 50) }, unlimited.Limit);
        Assert.Null(none.Limit);
        Assert.Equal(new RateLimit { Ops = new TokenBucketLimit(7, 70) }, rootfs.Limit);
        Assert.Equal(rootfs, final.Drives.Single(d => d.DriveId == FirecrackerHypervisor.RootfsDriveId));
    }

    [Fact]
    public async Task An_interfaces_receive_and_transmit_limits_change_apart_at_run_time()
    {
        Assert.SkipUnless(Environment.UserName == "root", "the stand-in opens TAPs as Firecracker does: root only");
        using var root = new TempRoot();
        await using var driver = await StartedAsync(root, "rl2", new NetworkDevice(UniqueTap()) { Id = "net0", RxOps = new TokenBucketLimit(10, 100) });

        var tx = await driver.UpdateInterfaceRateLimitsAsync("net0", null, new RateLimit { Bandwidth = new TokenBucketLimit(1 << 20, 1000, 1 << 21) }, Ct);
        var rx = await driver.UpdateInterfaceRateLimitsAsync("net0", new RateLimit { Ops = TokenBucketLimit.Unlimited }, null, Ct);
        await driver.StopAsync(Ct);

        Assert.Equal(new InterfaceRateLimits("net0", new RateLimit { Ops = new TokenBucketLimit(10, 100) }, new RateLimit { Bandwidth = new TokenBucketLimit(1 << 20, 1000, 1 << 21) }), tx);
        Assert.Equal(new InterfaceRateLimits("net0", null, tx.Transmit), rx);
    }

    public static TheoryData<RateLimit, string> BadUpdates => new()
    {
        { new RateLimit { Bandwidth = new TokenBucketLimit(0, 1000) }, "Limit.Bandwidth.Size" },
        { new RateLimit { Ops = new TokenBucketLimit(10, 0) }, "Limit.Ops.RefillTimeMs" },
        { new RateLimit { Ops = new TokenBucketLimit(10, Kiln.Api.RateLimiterRules.MaxRefillTimeMs + 1) }, "Limit.Ops.RefillTimeMs" },
        { new RateLimit { Bandwidth = new TokenBucketLimit(10, 10, -1) }, "Limit.Bandwidth.OneTimeBurst" },
        { new RateLimit(), "Limit" },
    };

    [Theory]
    [MemberData(nameof(BadUpdates))]
    public async Task A_run_time_limit_firecracker_would_not_apply_is_refused_naming_the_property_and_nothing_changes(RateLimit limit, string property)
    {
        using var root = new TempRoot();
        await using var driver = await StartedAsync(root, "rl3");
        var before = await driver.GetRateLimitsAsync(Ct);

        var error = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.UpdateDriveRateLimitAsync(FirecrackerHypervisor.RootfsDriveId, limit, Ct));

        Assert.Equal(property, error.PropertyName);
        Assert.Equal(before.Drives, (await driver.GetRateLimitsAsync(Ct)).Drives);
        await driver.StopAsync(Ct);
    }

    [Fact]
    public async Task An_interface_update_naming_no_direction_or_a_bad_bucket_is_refused_naming_the_property()
    {
        using var root = new TempRoot();
        await using var driver = await StartedAsync(root, "rl4");

        var neither = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.UpdateInterfaceRateLimitsAsync("eth0", null, null, Ct));
        var badTx = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.UpdateInterfaceRateLimitsAsync("eth0", null, new RateLimit { Ops = new TokenBucketLimit(5, 0) }, Ct));
        var badId = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.UpdateInterfaceRateLimitsAsync("eth-0", new RateLimit { Ops = new TokenBucketLimit(5, 5) }, null, Ct));
        await driver.StopAsync(Ct);

        Assert.Equal("Receive", neither.PropertyName);
        Assert.Equal("Transmit.Ops.RefillTimeMs", badTx.PropertyName);
        Assert.Equal("InterfaceId", badId.PropertyName);
    }

    [Fact]
    public async Task A_device_the_vm_does_not_have_is_named_with_the_ones_it_has()
    {
        using var root = new TempRoot();
        await using var driver = await StartedAsync(root, "rl5");

        var drive = await Assert.ThrowsAsync<SandboxException>(() => driver.UpdateDriveRateLimitAsync("nope", new RateLimit { Ops = new TokenBucketLimit(1, 1) }, Ct));
        var net = await Assert.ThrowsAsync<SandboxException>(() => driver.UpdateInterfaceRateLimitsAsync("eth0", new RateLimit { Ops = new TokenBucketLimit(1, 1) }, null, Ct));
        await driver.StopAsync(Ct);

        Assert.Contains("no drive 'nope' (its drives: rootfs, drive_0, drive_1)", drive.Message);
        Assert.Contains("no network interface 'eth0' (its interfaces: none)", net.Message);
    }

    [Fact]
    public async Task Rate_limits_cannot_change_while_no_vmm_runs()
    {
        using var root = new TempRoot();
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("rl6", SandboxTarget.Fake(root).Config(root), Ct);

        await Assert.ThrowsAsync<SandboxStateException>(() => driver.UpdateDriveRateLimitAsync("rootfs", new RateLimit { Ops = new TokenBucketLimit(1, 1) }, Ct));
        await Assert.ThrowsAsync<SandboxStateException>(() => driver.GetRateLimitsAsync(Ct));
    }

    [Theory]
    [InlineData("Bandwidth.Size")]
    [InlineData("Ops.RefillTimeMs")]
    public async Task A_boot_time_block_limit_firecracker_would_ignore_is_refused_when_the_device_is_added(string property)
    {
        using var root = new TempRoot();
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("rl7", SandboxTarget.Fake(root).Config(root), Ct);
        var device = new BlockDevice(LifecycleTests.MakeDisk(root, "d.img", 1))
        {
            Bandwidth = property.StartsWith("Bandwidth", StringComparison.Ordinal) ? new TokenBucketLimit(0, 100) : null,
            Ops = property.StartsWith("Ops", StringComparison.Ordinal) ? new TokenBucketLimit(10, 0) : null,
        };

        var error = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.AddDeviceAsync(device, Ct));

        Assert.Equal(property, error.PropertyName);
        Assert.Empty(driver.Devices);
    }

    [Fact]
    public async Task Unlimited_is_refused_at_boot_where_leaving_the_bucket_out_says_the_same()
    {
        using var root = new TempRoot();
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("rl8", SandboxTarget.Fake(root).Config(root), Ct);

        var error = await Assert.ThrowsAsync<SandboxConfigurationException>(() =>
            driver.AddDeviceAsync(new NetworkDevice("tapx") { TxOps = TokenBucketLimit.Unlimited }, Ct));

        Assert.Equal("TxOps.Size", error.PropertyName);
    }
}
