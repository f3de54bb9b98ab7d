using Kiln.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// The phases around the network preparation step of a networked (NAT) sandbox at which the owner dies: before the
/// step, with the network made but no VMM yet, with the VMM up in it but not recorded, and once recorded. Fields as
/// <see cref="OwnerPhase"/>.
/// </summary>
public static class NetworkOwnerPhases
{
    public static readonly OwnerPhase[] All =
    [
        new("network: before the set-up", "start", "kiln.sandbox.start.network", null, false, SandboxState.Created),
        // Inside the step, as each of these host commands is about to run (kiln.host.command spans): the network's
        // record is written, part of what it names exists.
        new("network: recorded, before its namespace", "start", "kiln.host.command ip netns add", null, false, SandboxState.Created),
        new("network: namespace and TAP made, before the veth pair", "start", "kiln.host.command ip link add", null, false, SandboxState.Created),
        new("network: veth pair up, before the forwarding and NAT rules", "start", "kiln.host.command sysctl", null, false, SandboxState.Created),
        new("network: sandbox-side NAT made, before the host's chains", "start", "kiln.host.command nft -f -#2", null, false, SandboxState.Created),
        new("network: made (netns, TAP, veth, NAT), before the spawn", "start", "kiln.sandbox.start.spawn", null, false, SandboxState.Created),
        new("network: VMM up in it, before the record", "start", "firecracker started", null, true, SandboxState.Starting),
        new("network: started, record written", "start", "operation-done", null, true, SandboxState.Running),
    ];

    public static TheoryData<string> Names => [.. All.Select(p => p.Name)];

    public static OwnerPhase Named(string name) => All.Single(p => p.Name == name);
}

/// <summary>
/// A library host driving a NAT sandbox (root, in a host namespace the test creates) SIGKILLed around the network
/// step. Afterwards another process with the same network settings re-attaches to a detached VMM and stops it, and
/// its clean-up leaves no namespace, TAP, veth or NAT rule, and no network record.
/// </summary>
public abstract class NetworkOwnerKillTests(bool detached)
{
    private const string Id = "netted";

    [Theory]
    [MemberData(nameof(NetworkOwnerPhases.Names), MemberType = typeof(NetworkOwnerPhases))]
    public async Task The_vmm_the_record_and_the_network_are_right_after_the_owner_is_sigkilled_at(string phaseName)
    {
        Assert.SkipUnless(Environment.UserName == "root", "sandbox networks need root (CI runs as root)");
        var phase = NetworkOwnerPhases.Named(phaseName);
        using var world = new NetworkWorld();
        var target = SandboxTarget.Fake(world.Root);
        var sandboxRoot = Directory.CreateDirectory(world.Root.Combine("sb")).FullName;
        var socket = Path.Combine(sandboxRoot, Id, "firecracker.sock");
        string[] network = ["--network", "nat", "--net-host", world.Host.Path, "--net-prefix", world.Prefix, "--net-state", world.NetworkOptions.StateDirectory];

        await using (var host = OwnerHost.Start(target, sandboxRoot, Id, detached, phase, network))
        {
            await host.WaitUntilAtPhaseAsync(phase, Path.Combine(sandboxRoot, Id, "firecracker.log"));
            host.Kill();
        }

        var survives = detached && phase.Spawned;
        await Eventually.TrueAsync(() => ProcessScan.WithCommandLineContaining(socket).Count == (survives ? 1 : 0), TimeSpan.FromSeconds(20), survives ? "the detached VMM runs on" : "the VMM is gone");
        await using (var other = await FirecrackerHypervisor.OpenAsync(sandboxRoot, Id, new FirecrackerHypervisorOptions { Networks = world.NetworkOptions }, Ct))
        {
            if (survives)
            {
                Assert.Equal(phase.Recorded, other.State);
                await other.StopAsync(TimeSpan.Zero, Ct);
                Assert.Equal(SandboxState.Stopped, (await SandboxCatalog.GetAsync(sandboxRoot, Id, Ct)).State);
            }
            await other.CleanupAsync(Ct);
        }

        AssertNoVmm(socket);
        Assert.Empty(world.Networks.List());
        Assert.Empty(Directory.GetFiles("/run/netns", world.Prefix + "*"));
        Assert.DoesNotContain("kiln", world.HostTables());
        Assert.DoesNotContain("kv", world.Host.Exec("ip", "-o", "link", "show"));
    }
}

public sealed class OwnedNetworkOwnerKillTests() : NetworkOwnerKillTests(detached: false);

public sealed class DetachedNetworkOwnerKillTests() : NetworkOwnerKillTests(detached: true);
