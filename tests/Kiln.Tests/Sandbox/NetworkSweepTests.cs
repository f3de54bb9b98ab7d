using System.Diagnostics;
using Kiln.Host.Network;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Sandbox;

/// <summary>
/// A sandbox network whose VMM died without a stop goes as soon as something notices, not at the next start. Root
/// only: "the host" is a namespace of the test's, sandbox namespaces get a prefix of its own.
/// </summary>
public sealed class NetworkSweepTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class World : NetworkWorld
    {
        public FirecrackerHypervisorOptions Options(Kiln.Vmm.VmmOwnership ownership) => new() { Networks = NetworkOptions, Ownership = ownership };

        public HypervisorConfig Config(NetworkMode mode) => SandboxTarget.Fake(Root).Config(Root) with { Network = new SandboxNetworkSpec { Mode = mode } };

        public void AssertGone(SandboxNetworkInfo info)
        {
            Assert.False(File.Exists(info.NamespacePath), $"{info.NamespacePath} is still there");
            Assert.Empty(Networks.List());
            Assert.Empty(Networks.Taps.List());
            Assert.DoesNotContain("kiln", Host.Exec("nft", "list", "ruleset"));
            if (info.HostVeth is { } veth)
                Assert.False(Host.HasLink(veth), $"{veth} is still there");
        }
    }

    private static void Kill(int pid)
    {
        using var process = Process.GetProcessById(pid);
        process.Kill();
        process.WaitForExit(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task The_owning_driver_removes_the_network_as_soon_as_its_vmm_is_killed()
    {
        using var world = new World();
        await using var driver = new FirecrackerHypervisor(world.Options(Kiln.Vmm.VmmOwnership.Owned));
        await driver.CreateAsync("own", world.Config(NetworkMode.Nat), Ct);
        await driver.StartAsync(Ct);
        var info = world.Networks.Get("own")!;

        Kill(driver.Pid!.Value);

        // The exit watcher sweeps in the background: observed up to a deadline, a failure when it passes.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (world.Networks.Get("own") is not null || File.Exists(info.NamespacePath))
        {
            Assert.True(DateTime.UtcNow < deadline, "the network of the killed VMM is still there after 20 s");
            await Task.Delay(20, Ct);
        }
        world.AssertGone(info);
        Assert.Equal(SandboxState.Exited, driver.State);
    }

    [Fact]
    public async Task Re_attaching_to_a_sandbox_whose_vmm_was_killed_removes_its_network_before_it_returns()
    {
        using var world = new World();
        var config = world.Config(NetworkMode.Nat);
        int pid;
        await using (var starter = new FirecrackerHypervisor(world.Options(Kiln.Vmm.VmmOwnership.Detached)))
        {
            await starter.CreateAsync("reattach", config, Ct);
            await starter.StartAsync(Ct);
            pid = starter.Pid!.Value;
        }
        var info = world.Networks.Get("reattach")!;
        Kill(pid);
        var leftBehind = File.Exists(info.NamespacePath);

        await using var driver = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, "reattach", world.Options(Kiln.Vmm.VmmOwnership.Detached), Ct);

        Assert.True(leftBehind, "nothing noticed the VMM's death before the re-attach");
        Assert.Equal(SandboxState.Exited, driver.State);
        world.AssertGone(info);
        await driver.CleanupAsync(Ct);
    }

    [Fact]
    public async Task Creating_a_driver_for_a_sandbox_whose_vmm_was_killed_removes_its_network()
    {
        using var world = new World();
        var config = world.Config(NetworkMode.Isolated);
        int pid;
        await using (var starter = new FirecrackerHypervisor(world.Options(Kiln.Vmm.VmmOwnership.Detached)))
        {
            await starter.CreateAsync("create", config, Ct);
            await starter.StartAsync(Ct);
            pid = starter.Pid!.Value;
        }
        var info = world.Networks.Get("create")!;
        Kill(pid);
        Assert.True(File.Exists(info.NamespacePath), "nothing noticed the VMM's death before the create");

        await using var driver = new FirecrackerHypervisor(world.Options(Kiln.Vmm.VmmOwnership.Detached));
        await driver.CreateAsync("create", config, Ct);

        world.AssertGone(info);
        await driver.StartAsync(Ct); // and a new start makes it again
        Assert.True(File.Exists(info.NamespacePath));
        await driver.StopAsync(Ct);
        world.AssertGone(info);
    }

    [Fact]
    public async Task A_sweep_of_one_sandbox_keeps_a_network_whose_owner_lives_and_removes_it_once_the_owner_is_gone()
    {
        using var world = new World();
        var info = (await world.Networks.SetUpAsync("one", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct))!;
        using var owner = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        await world.Networks.TransferOwnershipAsync("one", owner.Id, Ct);

        var whileAlive = await world.Networks.SweepAsync("one", Ct);
        var ownerAlive = SandboxNetworks.IsOwnerAlive(world.Networks.Get("one")!);
        owner.Kill();
        await owner.WaitForExitAsync(Ct);
        var afterDeath = await world.Networks.SweepAsync("one", Ct);
        var again = await world.Networks.SweepAsync("one", Ct);

        Assert.False(whileAlive);
        Assert.True(ownerAlive);
        Assert.True(afterDeath);
        Assert.False(again);
        world.AssertGone(info);
    }
}
