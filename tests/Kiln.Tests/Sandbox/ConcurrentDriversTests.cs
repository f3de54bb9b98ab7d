using Kiln.Sandbox;
using Kiln.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Sandbox;

/// <summary>
/// Two drivers on one sandbox, as a library owner and a <c>kiln</c> command (or two commands) are. Two instances in
/// one process stand for two processes: flock(2) excludes open file descriptions, not processes.
/// </summary>
public sealed class ConcurrentDriversTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(FirecrackerHypervisor Owner, FirecrackerHypervisor Other, HypervisorConfig Config)> StartTwoAsync(TempRoot root, int poolSize)
    {
        var config = SandboxTarget.Fake(root).Config(root, poolSize);
        var owner = new FirecrackerHypervisor();
        await owner.CreateAsync("two", config, Ct);
        await owner.StartAsync(Ct);
        var other = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, "two", cancellationToken: Ct);
        return (owner, other, config);
    }

    [Fact]
    public async Task Hot_plugs_from_two_drivers_take_different_pool_slots_and_both_drives_stay_attached()
    {
        using var root = new TempRoot();
        var (owner, other, config) = await StartTwoAsync(root, poolSize: 4);
        await using var _ = owner;
        await using var __ = other;
        var disks = Enumerable.Range(0, 4).Select(i => LifecycleTests.MakeDisk(root, $"d{i}.img", 1)).ToArray();

        // Alternating, then at the same time: each driver must see the slots the other one took.
        var first = Assert.IsType<BlockHotplugResult>(await owner.HotplugAddAsync(new BlockDevice(disks[0]), Ct));
        var second = Assert.IsType<BlockHotplugResult>(await other.HotplugAddAsync(new BlockDevice(disks[1]), Ct));
        var both = await Task.WhenAll(
            owner.HotplugAddAsync(new BlockDevice(disks[2]), Ct),
            other.HotplugAddAsync(new BlockDevice(disks[3]), Ct));

        Assert.Equal([0, 1, 2, 3], new[] { first, second }.Concat(both.Cast<BlockHotplugResult>()).Select(r => r.Slot).Order());
        var attached = (await owner.Api!.GetExportVmConfigAsync(Ct)).Drives!.ToDictionary(d => d.DriveId, d => d.PathOnHost);
        Assert.All(disks, disk => Assert.Contains(disk, attached.Values));
        var recorded = await SandboxCatalog.GetAsync(config.RootDirectory, "two", Ct);
        Assert.Equal(disks.Order(), recorded.PoolSlots.Select(s => s.HostPath!).Order());
        await owner.StopAsync(Ct);
    }

    [Fact]
    public async Task A_driver_sees_a_pause_made_by_another_and_can_resume_it()
    {
        using var root = new TempRoot();
        var (owner, other, _) = await StartTwoAsync(root, poolSize: 1);
        await using var _1 = owner;
        await using var _2 = other;

        await other.PauseAsync(Ct);
        await owner.ResumeAsync(Ct);

        Assert.Equal(SandboxState.Running, owner.State);
        Assert.Equal(Kiln.Api.InstanceState.Running, (await owner.Api!.DescribeInstanceAsync(Ct)).State);
        await other.PauseAsync(Ct);
        Assert.Equal(SandboxState.Paused, other.State);
        await owner.StopAsync(Ct);
    }

    [Fact]
    public async Task After_another_driver_stopped_the_vm_a_start_runs_one_new_vmm_that_the_other_driver_then_drives()
    {
        using var root = new TempRoot();
        var (owner, other, _) = await StartTwoAsync(root, poolSize: 2);
        await using var _1 = owner;
        await using var _2 = other;
        var firstPid = owner.Pid!.Value;
        await other.HotplugAddAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "a.img", 1)), Ct);

        await other.StopAsync(Ct);
        await owner.StartAsync(Ct);
        var plugged = Assert.IsType<BlockHotplugResult>(await other.HotplugAddAsync(new BlockDevice(LifecycleTests.MakeDisk(root, "b.img", 1)), Ct));

        Assert.NotEqual(firstPid, owner.Pid);
        Assert.Equal(owner.Pid, other.Pid);
        // The stop freed the pool; the new VMM's first slot is free again.
        Assert.Equal(0, plugged.Slot);
        Assert.Single(ProcessScan.WithCommandLineContaining(owner.SocketPath));
        await owner.StopAsync(Ct);
        Assert.Empty(ProcessScan.WithCommandLineContaining(owner.SocketPath));
    }

    [Fact]
    public async Task A_lock_held_past_the_timeout_fails_with_a_sandbox_exception_on_the_injected_clock()
    {
        using var root = new TempRoot();
        var directory = root.Combine("locked");
        Directory.CreateDirectory(directory);
        var clock = new FakeTimeProvider();
        using var held = await SandboxLock.AcquireAsync(directory, "locked", TimeSpan.FromSeconds(1), clock, Ct);

        var waiting = SandboxLock.AcquireAsync(directory, "locked", TimeSpan.FromSeconds(30), clock, Ct);
        while (!waiting.IsCompleted)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            await Task.Yield();
        }

        var e = await Assert.ThrowsAsync<SandboxException>(() => waiting);
        Assert.Contains("held sandbox 'locked' for over 30 s", e.Message);
    }

    [Fact]
    public async Task A_waiting_lock_is_granted_once_the_holder_releases_it()
    {
        using var root = new TempRoot();
        var directory = root.Combine("handover");
        Directory.CreateDirectory(directory);
        var held = await SandboxLock.AcquireAsync(directory, "handover", TimeSpan.FromSeconds(1), TimeProvider.System, Ct);

        var waiting = SandboxLock.AcquireAsync(directory, "handover", TimeSpan.FromSeconds(60), TimeProvider.System, Ct);
        Assert.False(waiting.IsCompleted);
        held.Dispose();

        using var granted = await waiting;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => SandboxLock.AcquireAsync(directory, "handover", TimeSpan.FromSeconds(60), TimeProvider.System, new CancellationToken(true)));
    }
}
