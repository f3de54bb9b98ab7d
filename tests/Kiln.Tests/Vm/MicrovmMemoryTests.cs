using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vmm;

namespace Kiln.Tests.Vm;

public sealed class MicrovmMemoryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Balloon StatsBalloon(int amountMib = 0, bool hinting = false) => new()
    {
        AmountMib = amountMib,
        DeflateOnOom = true,
        StatsPollingIntervalS = 1,
        FreePageHinting = hinting ? true : null,
    };

    private static MemoryHotplugConfig Region => new() { TotalSizeMib = 256, SlotSizeMib = 128, BlockSizeMib = 2 };

    private static async Task<Microvm> BootAsync(TempRoot root, Balloon? balloon = null, MemoryHotplugConfig? hotplug = null,
        Dictionary<string, string>? knobs = null, Func<MicrovmOptions, MicrovmOptions>? options = null)
    {
        var description = MicrovmFixture.Description(root) with { Balloon = balloon, MemoryHotplug = hotplug };
        var o = MicrovmFixture.Options(root, knobs);
        return await Microvm.BootAsync(description, options is null ? o : options(o), Ct);
    }

    [Fact]
    public async Task Inflating_waits_for_the_guest_to_activate_its_balloon_and_shows_in_its_statistics()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_BALLOON_ACTIVATION_MS"] = "400" };
        await using var vm = await BootAsync(root, StatsBalloon(), knobs: knobs);
        // Straight after boot the stand-in's guest has not activated the device, as a real kernel has not yet either.
        var early = await Assert.ThrowsAsync<FirecrackerApiException>(() => vm.Client.PatchBalloonAsync(new BalloonUpdate { AmountMib = 1 }, Ct));
        Assert.Equal("Balloon update error: Balloon: Device not activated yet.", early.FaultMessage);

        await vm.SetBalloonAsync(48, Ct);

        var stats = await vm.GetBalloonStatisticsAsync(Ct);
        Assert.Equal(48, stats.TargetMib);
        Assert.Equal(48, stats.ActualMib);
        Assert.Equal(48 * 256, stats.ActualPages);
        Assert.Equal(48, (await vm.GetBalloonAsync(Ct)).AmountMib);
    }

    [Fact]
    public async Task A_balloon_the_guest_never_activates_fails_with_a_typed_error_naming_what_never_came()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_BALLOON_ACTIVATION_MS"] = "600000" };
        await using var vm = await BootAsync(root, StatsBalloon(), knobs: knobs,
            options: o => o with { BalloonActivationTimeout = TimeSpan.FromMilliseconds(300) });

        var e = await Assert.ThrowsAsync<BalloonNotActivatedException>(() => vm.SetBalloonAsync(32, Ct));

        Assert.Equal(TimeSpan.FromMilliseconds(300), e.Waited);
        Assert.Equal("Balloon update error: Balloon: Device not activated yet.", e.FaultMessage);
        Assert.Contains("virtio-balloon driver did not activate", e.Message);
        Assert.Equal(0, (await vm.GetBalloonAsync(Ct)).AmountMib);
        Assert.Equal(MicrovmState.Running, vm.State);
    }

    [Fact]
    public async Task A_stop_is_not_held_up_by_a_wait_for_the_balloon()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_BALLOON_ACTIVATION_MS"] = "600000" };
        await using var vm = await BootAsync(root, StatsBalloon(), knobs: knobs,
            options: o => o with { BalloonActivationTimeout = TimeSpan.FromMinutes(5) });
        var waiting = vm.SetBalloonAsync(32, Ct);

        var outcome = await vm.StopAsync(ShutdownPlan.Kill(), Ct).WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.Equal(ShutdownActionKind.Kill, outcome.EndedBy);
        // The wait ends with the VMM: either its exit is seen between probes, or the next probe finds it stopped.
        var e = await Assert.ThrowsAnyAsync<Exception>(() => waiting.WaitAsync(TimeSpan.FromSeconds(20), Ct));
        Assert.True(e is VmmExitedException or MicrovmStateException, e.ToString());
    }

    [Fact]
    public async Task Without_hotplug_resizing_below_the_boot_memory_inflates_the_balloon_and_giving_it_back_deflates_it()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, StatsBalloon());

        var shrunk = await vm.ResizeMemoryAsync(96, Ct);

        Assert.Equal(MemoryResizeMechanism.Balloon, shrunk.Mechanism);
        Assert.Equal(new GuestMemory(128, 0, null, 32, 32), shrunk.Memory);
        Assert.Equal(96, shrunk.Memory.GuestMib);
        Assert.True(shrunk.Memory.Settled);

        var restored = await vm.ResizeMemoryAsync(128, Ct);

        Assert.Equal(MemoryResizeMechanism.Balloon, restored.Mechanism);
        Assert.Equal(128, restored.Memory.GuestMib);
        Assert.Equal(0, (await vm.GetBalloonStatisticsAsync(Ct)).ActualMib);
    }

    [Fact]
    public async Task With_hotplug_memory_grows_through_virtio_mem_and_shrinks_below_boot_through_the_balloon()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, StatsBalloon(), Region);

        var grown = await vm.ResizeMemoryAsync(255, Ct);

        Assert.Equal(MemoryResizeMechanism.VirtioMem, grown.Mechanism);
        // Rounded up to the region's 2 MiB blocks.
        Assert.Equal(new GuestMemory(128, 128, 128, 0, 0), grown.Memory);
        Assert.Equal(256, grown.Memory.GuestMib);

        var shrunk = await vm.ResizeMemoryAsync(64, Ct);

        Assert.Equal(MemoryResizeMechanism.Balloon, shrunk.Mechanism);
        Assert.Equal(new GuestMemory(128, 0, 0, 64, 64), shrunk.Memory);
        Assert.Equal(0, (await vm.Client.GetMemoryHotplugAsync(Ct)).RequestedSizeMib);

        var back = await vm.ResizeMemoryAsync(200, Ct);

        Assert.Equal(new GuestMemory(128, 72, 72, 0, 0), back.Memory);
    }

    [Fact]
    public async Task Growing_past_the_boot_memory_without_a_virtio_mem_region_is_refused_before_anything_changes()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, StatsBalloon(16));

        var e = await Assert.ThrowsAsync<MemoryResizeException>(() => vm.ResizeMemoryAsync(512, Ct));

        Assert.Equal(512, e.RequestedMib);
        Assert.Contains("no virtio-mem region", e.Message);
        Assert.Equal(16, (await vm.GetBalloonAsync(Ct)).AmountMib);
    }

    [Fact]
    public async Task Growing_past_the_virtio_mem_region_is_refused_naming_its_size()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, hotplug: Region);

        var e = await Assert.ThrowsAsync<MemoryResizeException>(() => vm.ResizeMemoryAsync(1024, Ct));

        Assert.Contains("holds 256 MiB", e.Message);
        Assert.Equal(0, (await vm.Client.GetMemoryHotplugAsync(Ct)).RequestedSizeMib);
    }

    [Fact]
    public async Task Shrinking_below_the_boot_memory_without_a_balloon_is_refused()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, hotplug: Region);

        var e = await Assert.ThrowsAsync<MemoryResizeException>(() => vm.ResizeMemoryAsync(64, Ct));

        Assert.Contains("no balloon", e.Message);
    }

    [Fact]
    public async Task A_guest_with_neither_device_cannot_be_resized()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root);

        var e = await Assert.ThrowsAsync<MemoryResizeException>(() => vm.ResizeMemoryAsync(128, Ct));

        Assert.Contains("neither a virtio-mem region nor a balloon", e.Message);
    }

    [Fact]
    public async Task Without_statistics_the_guest_memory_is_reported_from_the_balloon_target()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, new Balloon { AmountMib = 0, DeflateOnOom = false });

        var outcome = await vm.ResizeMemoryAsync(100, Ct);

        Assert.Equal(new GuestMemory(128, 0, null, 28, null), outcome.Memory);
        Assert.Equal(100, outcome.Memory.GuestMib);
        Assert.Equal(outcome.Memory, await vm.GetMemoryAsync(Ct));
    }

    [Fact]
    public async Task A_paused_guest_cannot_move_its_balloon_but_its_statistics_can_be_read()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, StatsBalloon(8));
        await vm.PauseAsync(Ct);

        var e = await Assert.ThrowsAsync<MicrovmStateException>(() => vm.SetBalloonAsync(16, Ct));
        await Assert.ThrowsAsync<MicrovmStateException>(() => vm.ResizeMemoryAsync(100, Ct));

        Assert.Equal(MicrovmState.Paused, e.Actual);
        Assert.Equal(8, (await vm.GetBalloonStatisticsAsync(Ct)).TargetMib);
    }

    [Fact]
    public async Task The_statistics_interval_changes_after_boot_but_statistics_cannot_be_turned_off()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, StatsBalloon());

        await vm.SetBalloonStatisticsIntervalAsync(5, Ct);

        Assert.Equal(5, (await vm.GetBalloonAsync(Ct)).StatsPollingIntervalS);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => vm.SetBalloonStatisticsIntervalAsync(0, Ct));
    }

    [Fact]
    public async Task A_free_page_hinting_run_starts_and_stops_once_the_balloon_is_active()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_BALLOON_ACTIVATION_MS"] = "200" };
        await using var vm = await BootAsync(root, StatsBalloon(hinting: true), knobs: knobs);

        await vm.StartFreePageHintingAsync(cancellationToken: Ct);
        var running = await vm.GetFreePageHintingStatusAsync(Ct);
        await vm.StopFreePageHintingAsync(Ct);
        var stopped = await vm.GetFreePageHintingStatusAsync(Ct);

        Assert.Equal(2, running.HostCmd);
        Assert.Equal(1, stopped.HostCmd);
    }

    [Fact]
    public async Task Free_page_hinting_is_refused_when_the_balloon_was_booted_without_it()
    {
        using var root = new TempRoot();
        await using var vm = await BootAsync(root, StatsBalloon());

        var e = await Assert.ThrowsAsync<FirecrackerApiException>(() => vm.StartFreePageHintingAsync(cancellationToken: Ct));

        Assert.Equal("Balloon update error: Balloon: Attempting to use hinting when not enabled", e.FaultMessage);
    }
}
