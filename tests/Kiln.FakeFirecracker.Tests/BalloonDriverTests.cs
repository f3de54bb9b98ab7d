using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>After boot the balloon only moves once the guest's virtio-balloon driver activated the device; the pretend
/// guest does so FAKE_FC_BALLOON_ACTIVATION_MS after InstanceStart (at once by default). Texts follow
/// src/vmm/src/devices/virtio/balloon/mod.rs (BalloonError) inside VmmError::Balloon ("Balloon: …").</summary>
public sealed class BalloonDriverTests
{
    private const string NotActive = "Balloon update error: Balloon: Device not activated yet.";

    private static async Task<Fc> BootWithBalloon(TempDir dir, int activationMs, string balloon)
    {
        var env = new Dictionary<string, string> { ["FAKE_FC_BALLOON_ACTIVATION_MS"] = activationMs.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        var fc = await Fc.StartAsync(dir, env: env);
        await fc.Ok("PUT", "/balloon", balloon);
        await fc.BootAsync();
        return fc;
    }

    // balloon/device.rs update_size and update_free_page_hint_cmd need an active device; latest_stats and
    // update_stats_polling_interval do not.
    [Fact]
    public async Task Before_the_guest_driver_activates_it_the_balloon_cannot_be_resized_or_hinted_but_reports_statistics()
    {
        using var dir = new TempDir();
        await using var fc = await BootWithBalloon(dir, 600_000, """{"amount_mib": 16, "deflate_on_oom": false, "stats_polling_interval_s": 5, "free_page_hinting": true}""");

        var resize = await fc.Patch("/balloon", """{"amount_mib": 32}""");
        var hint = await fc.Patch("/balloon/hinting/start", """{}""");
        var stats = await fc.Get("/balloon/statistics");
        var interval = await fc.Patch("/balloon/statistics", """{"stats_polling_interval_s": 6}""");

        Assert.Equal(NotActive, Fc.Fault(resize));
        Assert.Equal(NotActive, Fc.Fault(hint));
        Assert.Equal("""{"target_pages":4096,"actual_pages":0,"target_mib":16,"actual_mib":0}""", stats.Body);
        Assert.Equal(204, interval.Status);
        Assert.Contains("\"amount_mib\":16", (await fc.Get("/balloon")).Body);
    }

    [Fact]
    public async Task The_balloon_becomes_resizable_once_the_activation_delay_has_passed()
    {
        using var dir = new TempDir();
        await using var fc = await BootWithBalloon(dir, 3000, """{"amount_mib": 16, "deflate_on_oom": false}""");

        var early = await fc.Patch("/balloon", """{"amount_mib": 32}""");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var later = early;
        while (later.Status != 204 && DateTime.UtcNow < deadline)
        {
            // Probing the device until the pretend driver is up, bounded by the deadline.
            await Task.Delay(100, Fc.Ct);
            later = await fc.Patch("/balloon", """{"amount_mib": 32}""");
        }

        Assert.Equal(NotActive, Fc.Fault(early));
        Assert.Equal(204, later.Status);
        Assert.Contains("\"amount_mib\":32", (await fc.Get("/balloon")).Body);
    }

    // balloon/device.rs update_size (TooMuchMemoryRequested), get_hinting_status/start_hinting (HintingNotEnabled),
    // latest_stats (StatisticsDisabled, reported through VmmActionError::InternalVmm).
    [Fact]
    public async Task An_active_balloon_refuses_more_than_guest_memory_hinting_it_lacks_and_statistics_it_does_not_poll()
    {
        using var dir = new TempDir();
        await using var fc = await BootWithBalloon(dir, 0, """{"amount_mib": 16, "deflate_on_oom": false}""");

        var tooMuch = await fc.Patch("/balloon", """{"amount_mib": 512}""");
        var hint = await fc.Patch("/balloon/hinting/start", """{}""");
        var status = await fc.Get("/balloon/hinting/status");
        var stats = await fc.Get("/balloon/statistics");
        var switchOn = await fc.Patch("/balloon/statistics", """{"stats_polling_interval_s": 1}""");

        Assert.Equal("Balloon update error: Balloon: Requested memory should be less than 512MiB", Fc.Fault(tooMuch));
        Assert.Equal("Balloon update error: Balloon: Attempting to use hinting when not enabled", Fc.Fault(hint));
        Assert.Equal("Balloon update error: Balloon: Attempting to use hinting when not enabled", Fc.Fault(status));
        Assert.Equal("Internal VMM error: Balloon: Received stats query when stats are disabled.", Fc.Fault(stats));
        Assert.Equal("Balloon update error: Balloon: Statistics cannot be enabled/disabled after activation.", Fc.Fault(switchOn));
        Assert.Equal(16, JsonNode.Parse((await fc.Get("/balloon")).Body)!["amount_mib"]!.GetValue<int>());
    }

    // balloon/device.rs start_hinting (ids from 2: 0 is STOP, 1 is DONE) and stop_hinting (DONE).
    [Fact]
    public async Task Hinting_runs_are_numbered_from_2_and_stopping_sends_done()
    {
        using var dir = new TempDir();
        await using var fc = await BootWithBalloon(dir, 0, """{"amount_mib": 16, "deflate_on_oom": false, "free_page_hinting": true}""");

        async Task<int> HostCmd() => JsonNode.Parse((await fc.Get("/balloon/hinting/status")).Body)!["host_cmd"]!.GetValue<int>();
        await fc.Ok("PATCH", "/balloon/hinting/start", "{}");
        var first = await HostCmd();
        await fc.Ok("PATCH", "/balloon/hinting/stop", "{}");
        var stopped = await HostCmd();
        await fc.Ok("PATCH", "/balloon/hinting/start", "{}");
        var second = await HostCmd();

        Assert.Equal((2, 1, 3), (first, stopped, second));
    }

    // src/vmm/src/resources.rs update_machine_config: memory may not shrink below the balloon's target
    // (MachineConfigError::IncompatibleBalloonSize in vmm_config/machine_config.rs).
    [Fact]
    public async Task Guest_memory_cannot_shrink_below_a_configured_balloon()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/balloon", """{"amount_mib": 100, "deflate_on_oom": false}""");

        var answer = await fc.Patch("/machine-config", """{"mem_size_mib": 64}""");

        Assert.Equal("Machine config error: The memory size (MiB) is smaller than the previously set balloon device target size.", Fc.Fault(answer));
    }
}
