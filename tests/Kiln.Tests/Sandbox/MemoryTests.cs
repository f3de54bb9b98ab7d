using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Sandbox;

/// <summary>The driver's ResizeMemory on the stand-in and, when given, a real guest: it maps onto Microvm's.</summary>
public sealed class MemoryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task Resizing_below_the_boot_memory_inflates_the_balloon_as_its_statistics_show_and_resizing_back_deflates_it(string targetName)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.For(targetName, root);
        var config = target.Config(root) with { Balloon = new BalloonSettings(StatisticsIntervalSeconds: 1) };
        // The stand-in's guest activates its balloon a while after boot, as a real kernel's driver does.
        var knobs = new Dictionary<string, string> { ["FAKE_FC_BALLOON_ACTIVATION_MS"] = "300" };
        await using var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Environment = knobs });
        await driver.CreateAsync("mem", config, Ct);
        await driver.StartAsync(Ct);
        await GuestConsole.WaitForAsync(driver, target.ReadyPattern, target.BootTimeout);

        var shrunk = await driver.ResizeMemoryAsync((uint)target.MemoryMiB - 32, 0, probe: false, Ct);

        Assert.Equal(new MemoryResizeResult((uint)target.MemoryMiB - 32, 0), shrunk);
        var stats = await driver.Vm!.GetBalloonStatisticsAsync(Ct);
        Assert.Equal(32, stats.TargetMib);
        Assert.Equal(32, stats.ActualMib);

        var restored = await driver.ResizeMemoryAsync((uint)target.MemoryMiB, 0, probe: false, Ct);

        Assert.Equal(new MemoryResizeResult((uint)target.MemoryMiB, 0), restored);
        Assert.Equal(0, (await driver.Vm.GetBalloonStatisticsAsync(Ct)).ActualMib);
    }

    [Fact]
    public async Task Growing_a_sandbox_with_only_a_balloon_is_refused_naming_the_balloon()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root) with { Balloon = new BalloonSettings() };
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("mem", config, Ct);
        await driver.StartAsync(Ct);

        var e = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.ResizeMemoryAsync(1024, 0, false, Ct));

        Assert.Equal(nameof(HypervisorConfig.Balloon), e.PropertyName);
    }

    [Theory]
    [InlineData(-1, 1, "Balloon.InitialMiB")]
    [InlineData(129, 1, "Balloon.InitialMiB")]
    [InlineData(0, 70000, "Balloon.StatisticsIntervalSeconds")]
    public async Task A_balloon_setting_out_of_range_is_refused_before_anything_starts(int initial, int interval, string property)
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root) with { Balloon = new BalloonSettings(initial, StatisticsIntervalSeconds: interval) };
        await using var driver = new FirecrackerHypervisor();

        var e = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.CreateAsync("mem", config, Ct));

        Assert.Equal(property, e.PropertyName);
    }
}
