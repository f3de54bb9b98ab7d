// Guest memory after boot: the balloon (inflate, deflate, statistics, free page hinting) and ResizeMemoryAsync, which
// picks the device for the size asked — virtio-mem above the boot memory, the balloon below it — and reports what the
// guest has once the devices settled. Firecracker refuses a balloon size change until the guest's driver activated
// the device, so a change waits for that (bounded); the waits take the lifecycle lock only for each request, so a
// stop is never held up behind them.
using Kiln.Api;
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    // balloon/mod.rs BalloonError::DeviceNotActive ("Device not activated yet."), inside VmmError::Balloon.
    private const string BalloonNotActiveFault = "Device not activated yet";

    /// <summary>The longest pause between two attempts while the balloon or the memory devices settle.</summary>
    private static readonly TimeSpan MaxMemoryProbeBackoff = TimeSpan.FromMilliseconds(100);

    /// <summary>The balloon's configuration now (GET /balloon): its target size, statistics interval and features.</summary>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    /// <exception cref="FirecrackerApiException">The microVM has no balloon.</exception>
    public Task<Balloon> GetBalloonAsync(CancellationToken cancellationToken = default) =>
        LockedReadAsync("read the balloon", "balloon.get", [MicrovmState.Running, MicrovmState.Paused], ct => Client.DescribeBalloonConfigAsync(ct), cancellationToken);

    /// <summary>
    /// The balloon's statistics (GET /balloon/statistics): its target and actual size and what the guest last reported
    /// (free, available and total memory, faults, …). Needs a non-zero statistics interval at boot.
    /// </summary>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    /// <exception cref="FirecrackerApiException">No balloon, or its statistics are off.</exception>
    public Task<BalloonStats> GetBalloonStatisticsAsync(CancellationToken cancellationToken = default) =>
        LockedReadAsync("read the balloon statistics", "balloon.statistics", [MicrovmState.Running, MicrovmState.Paused], ct => Client.DescribeBalloonStatsAsync(ct), cancellationToken);

    /// <summary>
    /// Sets the balloon's target (PATCH /balloon): inflating takes <paramref name="amountMib"/> from the guest,
    /// deflating gives it back. Waits (up to <see cref="MicrovmOptions.BalloonActivationTimeout"/>) for the guest's
    /// driver to activate the device first; the guest then moves pages at its own pace (see
    /// <see cref="GetBalloonStatisticsAsync"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="amountMib"/> is negative.</exception>
    /// <exception cref="MicrovmStateException">Not Running (a paused guest cannot activate or move its balloon).</exception>
    /// <exception cref="BalloonNotActivatedException">The guest's driver did not activate the device in time.</exception>
    /// <exception cref="FirecrackerApiException">No balloon, or more than the guest's memory.</exception>
    public Task SetBalloonAsync(int amountMib, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amountMib);
        return WhenBalloonActiveAsync("set the balloon size", "balloon.set", ct => Client.PatchBalloonAsync(new BalloonUpdate { AmountMib = amountMib }, ct), cancellationToken);
    }

    /// <summary>
    /// Changes how often the guest reports balloon statistics (PATCH /balloon/statistics). Statistics can be neither
    /// turned on nor off after boot: a zero interval is refused here when they are on, by Firecracker otherwise.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="seconds"/> is not positive.</exception>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public Task SetBalloonStatisticsIntervalAsync(int seconds, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seconds);
        // Firecracker asks the guest for fresh statistics on the change, which needs the device active.
        return WhenBalloonActiveAsync("set the balloon statistics interval", "balloon.statistics-interval",
            ct => Client.PatchBalloonStatsIntervalAsync(new BalloonStatsUpdate { StatsPollingIntervalS = seconds }, ct), cancellationToken,
            MicrovmState.Running, MicrovmState.Paused);
    }

    /// <summary>
    /// Starts a free page hinting run (PATCH /balloon/hinting/start): the guest reports its free pages and Firecracker
    /// gives them back to the host. Needs <c>free_page_hinting</c> at boot; waits for the device's activation as
    /// <see cref="SetBalloonAsync"/> does.
    /// </summary>
    /// <param name="acknowledgeOnStop">Whether Firecracker ends the run by itself when the guest says it is done.</param>
    /// <param name="cancellationToken">Cancels the wait and the request.</param>
    /// <exception cref="BalloonNotActivatedException">The guest's driver did not activate the device in time.</exception>
    public Task StartFreePageHintingAsync(bool acknowledgeOnStop = true, CancellationToken cancellationToken = default) =>
        WhenBalloonActiveAsync("start free page hinting", "balloon.hinting.start",
            ct => Client.StartBalloonHintingAsync(new BalloonStartCmd { AcknowledgeOnStop = acknowledgeOnStop }, ct), cancellationToken);

    /// <summary>The free page hinting run's state (GET /balloon/hinting/status): the host's and the guest's last command.</summary>
    public Task<BalloonHintingStatus> GetFreePageHintingStatusAsync(CancellationToken cancellationToken = default) =>
        LockedReadAsync("read free page hinting", "balloon.hinting.get", [MicrovmState.Running, MicrovmState.Paused], ct => Client.DescribeBalloonHintingAsync(ct), cancellationToken);

    /// <summary>Ends the free page hinting run (PATCH /balloon/hinting/stop).</summary>
    /// <exception cref="BalloonNotActivatedException">The guest's driver did not activate the device in time.</exception>
    public Task StopFreePageHintingAsync(CancellationToken cancellationToken = default) =>
        WhenBalloonActiveAsync("stop free page hinting", "balloon.hinting.stop", ct => Client.StopBalloonHintingAsync(ct), cancellationToken);

    /// <summary>What the guest's memory is made of now, from Firecracker's configuration and its devices.</summary>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public Task<GuestMemory> GetMemoryAsync(CancellationToken cancellationToken = default) =>
        LockedReadAsync("read the guest memory", "memory.get", [MicrovmState.Running, MicrovmState.Paused], async ct =>
        {
            var config = await Client.GetExportVmConfigAsync(ct).ConfigureAwait(false);
            return await ReadMemoryAsync(config, ct).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>
    /// Gives the guest <paramref name="totalMib"/> of memory: above the boot memory through the virtio-mem region
    /// (rounded up to its block size; a balloon, if any, is emptied), below it through the balloon (inflated by the
    /// difference; virtio-mem, if any, unplugged). Waits for the balloon's activation when it must change, then up to
    /// <see cref="MicrovmOptions.MemorySettleTimeout"/> for the devices to hold what was asked, and reports what the
    /// guest has then (<see cref="GuestMemory.Settled"/> says whether they got there).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="totalMib"/> is not positive.</exception>
    /// <exception cref="MicrovmStateException">Not Running.</exception>
    /// <exception cref="MemoryResizeException">No configured device can give that size (nothing was changed).</exception>
    /// <exception cref="BalloonNotActivatedException">The guest's balloon driver did not activate the device in time.</exception>
    public async Task<MemoryResizeOutcome> ResizeMemoryAsync(int totalMib, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(totalMib);
        var config = await LockedReadAsync("resize memory", "memory.config", [MicrovmState.Running], ct => Client.GetExportVmConfigAsync(ct), cancellationToken).ConfigureAwait(false);
        var plan = MemoryResizePlan.For(totalMib, config);
        if (plan.PlugMib is { } plug)
        {
            await LockedAsync("resize memory", "memory.resize", [MicrovmState.Running],
                ct => Client.PatchMemoryHotplugAsync(new MemoryHotplugSizeUpdate { RequestedSizeMib = plug }, ct), cancellationToken).ConfigureAwait(false);
        }
        // An unchanged target needs no request, and so no wait for a driver that may never come (a guest without one).
        if (plan.BalloonMib is { } balloon && balloon != config.Balloon!.AmountMib)
            await SetBalloonAsync(balloon, cancellationToken).ConfigureAwait(false);
        var memory = await WaitForMemoryAsync(cancellationToken).ConfigureAwait(false);
        return new MemoryResizeOutcome(totalMib, plan.Mechanism, memory);
    }

    /// <summary>Polls the devices until they hold what they were asked (or the settle deadline); the last reading.</summary>
    private async Task<GuestMemory> WaitForMemoryAsync(CancellationToken cancellationToken)
    {
        var time = _options.TimeProvider;
        var start = time.GetTimestamp();
        var backoff = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            var memory = await GetMemoryAsync(cancellationToken).ConfigureAwait(false);
            if (memory.Settled || time.GetElapsedTime(start) >= _options.MemorySettleTimeout)
                return memory;
            await PauseWhileRunningAsync(backoff, "waiting for the guest's memory devices", cancellationToken).ConfigureAwait(false);
            backoff = backoff * 2 < MaxMemoryProbeBackoff ? backoff * 2 : MaxMemoryProbeBackoff;
        }
    }

    /// <summary>Reads the plugged size and the balloon's actual size next to the configuration's boot memory.</summary>
    private async Task<GuestMemory> ReadMemoryAsync(FullVmConfiguration config, CancellationToken ct)
    {
        var boot = config.MachineConfig?.MemSizeMib ?? Description?.MachineConfig.MemSizeMib
            ?? throw new MicrovmException("Firecracker's configuration has no machine-config (GET /vm/config).");
        int plugged = 0;
        int? requested = null;
        if (config.MemoryHotplug is not null)
        {
            var status = await Client.GetMemoryHotplugAsync(ct).ConfigureAwait(false);
            plugged = status.PluggedSizeMib ?? 0;
            requested = status.RequestedSizeMib ?? 0;
        }
        int? target = null;
        int? actual = null;
        if (config.Balloon is { } balloon)
        {
            target = balloon.AmountMib;
            if (balloon.StatsPollingIntervalS is > 0)
            {
                var stats = await Client.DescribeBalloonStatsAsync(ct).ConfigureAwait(false);
                target = (int)stats.TargetMib;
                actual = (int)stats.ActualMib;
            }
        }
        return new GuestMemory(boot, plugged, requested, target, actual);
    }

    /// <summary>
    /// Runs a balloon request once the guest's driver has activated the device: while Firecracker answers
    /// <c>Device not activated yet</c>, tries again after a growing pause, racing the VMM's exit, until
    /// <see cref="MicrovmOptions.BalloonActivationTimeout"/>.
    /// </summary>
    private async Task WhenBalloonActiveAsync(string operation, string span, Func<CancellationToken, Task> request, CancellationToken cancellationToken,
        params MicrovmState[] expected)
    {
        if (expected.Length == 0)
            expected = [MicrovmState.Running];
        var time = _options.TimeProvider;
        var start = time.GetTimestamp();
        var backoff = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            try
            {
                await LockedAsync(operation, span, expected, request, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (FirecrackerApiException e) when (e.FaultMessage?.Contains(BalloonNotActiveFault, StringComparison.Ordinal) == true)
            {
                var waited = time.GetElapsedTime(start);
                if (waited >= _options.BalloonActivationTimeout)
                    throw new BalloonNotActivatedException(_options.BalloonActivationTimeout, e.FaultMessage);
                var remaining = _options.BalloonActivationTimeout - waited;
                await PauseWhileRunningAsync(remaining < backoff ? remaining : backoff, "waiting for the guest to activate its balloon", cancellationToken).ConfigureAwait(false);
                backoff = backoff * 2 < MaxMemoryProbeBackoff ? backoff * 2 : MaxMemoryProbeBackoff;
            }
        }
    }

    /// <summary>A pause between two probes that ends early, with <see cref="VmmExitedException"/>, when the VMM does.</summary>
    private async Task PauseWhileRunningAsync(TimeSpan pause, string waitingFor, CancellationToken cancellationToken)
    {
        await Task.WhenAny(Task.Delay(pause, _options.TimeProvider, cancellationToken), _vmm.Exited).ConfigureAwait(false);
        if (_vmm.Exited.IsCompleted)
            throw new VmmExitedException(await _vmm.Exited.ConfigureAwait(false), waitingFor);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary><see cref="LockedAsync"/> for a request with an answer.</summary>
    private async Task<T> LockedReadAsync<T>(string operation, string span, MicrovmState[] expected, Func<CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        T result = default!;
        await LockedAsync(operation, span, expected, async ct => { result = await action(ct).ConfigureAwait(false); }, cancellationToken).ConfigureAwait(false);
        return result;
    }
}
