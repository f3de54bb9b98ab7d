using Kiln.Host.Network;
using Kiln.Tests.Support;

namespace Kiln.Tests.Host;

/// <summary>
/// Real packets through a sandbox network. Every namespace is the test's own: "the host" (where Kiln puts its veth
/// ends and nftables chains), "the outside" (198.51.100.2 behind the host, with no route back to any sandbox
/// network), and for each sandbox "a guest": a namespace standing in for the VM behind the TAP, bridged with the TAP
/// in the sandbox's namespace and holding the guest's address. The guest reaches the outside in NAT mode only.
/// </summary>
public sealed class NatTrafficTests
{
    private const string OutsideAddress = "198.51.100.2";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class World : NetworkWorld
    {
        private readonly List<TestNetns> _guests = [];

        public World()
        {
            Assert.SkipUnless(TestNetns.Installed("ping"), "needs ping (iputils-ping); .ci/run installs it");
            Outside = TestNetns.Create();
            // The host's link to the outside: the host's default route, as an uplink would be.
            Host.Exec("ip", "link", "add", "uplink", "type", "veth", "peer", "name", "wan", "netns", Outside.Name);
            Host.Exec("ip", "addr", "add", "198.51.100.1/24", "dev", "uplink");
            Host.Exec("ip", "link", "set", "dev", "uplink", "up");
            Host.Exec("ip", "route", "add", "default", "via", OutsideAddress);
            Outside.Exec("ip", "addr", "add", OutsideAddress + "/24", "dev", "wan");
            Outside.Exec("ip", "link", "set", "dev", "wan", "up");
            Outside.Exec("ip", "link", "set", "dev", "lo", "up");
        }

        public TestNetns Outside { get; }

        /// <summary>
        /// A guest behind the sandbox's TAP: the TAP address moves to a bridge that holds both the TAP and a veth to
        /// the guest's namespace, which takes the guest address and the TAP address as its gateway.
        /// </summary>
        public TestNetns GuestBehind(SandboxNetworkInfo info)
        {
            var guest = TestNetns.Create();
            _guests.Add(guest);
            string[] InSandbox(params string[] args) => ["ip", "-n", Path.GetFileName(info.NamespacePath!), .. args];
            TestNetns.Run(InSandbox("link", "add", "br0", "type", "bridge"));
            TestNetns.Run(InSandbox("addr", "del", info.TapAddress!.ToString(), "dev", info.TapName!));
            TestNetns.Run(InSandbox("addr", "add", info.TapAddress.ToString(), "dev", "br0"));
            TestNetns.Run(InSandbox("link", "set", "dev", info.TapName!, "master", "br0"));
            TestNetns.Run(InSandbox("link", "add", "vguest", "type", "veth", "peer", "name", "eth0", "netns", guest.Name));
            TestNetns.Run(InSandbox("link", "set", "dev", "vguest", "master", "br0"));
            TestNetns.Run(InSandbox("link", "set", "dev", "vguest", "up"));
            TestNetns.Run(InSandbox("link", "set", "dev", "br0", "up"));
            guest.Exec("ip", "addr", "add", info.GuestAddress!.ToString(), "dev", "eth0");
            guest.Exec("ip", "link", "set", "dev", "eth0", "up");
            guest.Exec("ip", "link", "set", "dev", "lo", "up");
            guest.Exec("ip", "route", "add", "default", "via", info.TapAddress.Address.ToString());
            return guest;
        }

        protected override void DisposeMore()
        {
            foreach (var guest in _guests)
                guest.Dispose();
            Outside.Dispose();
        }
    }

    /// <summary>Whether an ICMP echo from <paramref name="from"/> to <paramref name="address"/> is answered (any of three).</summary>
    private static bool Reaches(TestNetns from, string address)
    {
        try
        {
            from.Exec("ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", address);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    [Fact]
    public async Task A_guest_reaches_the_outside_through_nat_and_the_outside_sees_only_the_host()
    {
        using var world = new World();
        var info = (await world.Networks.SetUpAsync("nat", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct))!;
        var guest = world.GuestBehind(info);

        var gateway = Reaches(guest, info.TapAddress!.Address.ToString());
        // The outside has no route to the guest's network nor to the link subnet: only a reply to the host's own
        // address (the masquerade) can come back.
        var outside = Reaches(guest, OutsideAddress);
        await world.Networks.TearDownAsync("nat", Ct);

        Assert.True(gateway, "the guest does not even reach its gateway: the stand-in guest is broken, not NAT");
        Assert.True(outside, "the guest did not reach the outside through NAT");
        Assert.DoesNotContain("kiln", world.Host.Exec("nft", "list", "ruleset"));
    }

    [Fact]
    public async Task An_isolated_guest_reaches_its_gateway_and_nothing_beyond()
    {
        using var world = new World();
        var info = (await world.Networks.SetUpAsync("iso", new SandboxNetworkSpec { Mode = NetworkMode.Isolated }, Ct))!;
        var guest = world.GuestBehind(info);

        var gateway = Reaches(guest, info.TapAddress!.Address.ToString());
        var outside = Reaches(guest, OutsideAddress);
        var host = Reaches(guest, "198.51.100.1");
        await world.Networks.TearDownAsync("iso", Ct);

        Assert.True(gateway, "the guest does not even reach its gateway: the stand-in guest is broken");
        Assert.False(outside, "an isolated guest reached the outside");
        Assert.False(host, "an isolated guest reached the host");
    }

    [Fact]
    public async Task Nobody_outside_can_open_a_connection_towards_a_nat_sandbox()
    {
        using var world = new World();
        var info = (await world.Networks.SetUpAsync("ingress", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct))!;
        var guest = world.GuestBehind(info);
        // Even given a route, the outside's new connections to the sandbox's end of the link are dropped by Kiln's
        // forward chain, while the host itself (not forwarding) still reaches it.
        world.Outside.Exec("ip", "route", "add", "10.200.0.0/16", "via", "198.51.100.1");

        var fromOutside = Reaches(world.Outside, info.NamespaceVethAddress!.Address.ToString());
        var fromHost = Reaches(world.Host, info.NamespaceVethAddress.Address.ToString());
        var egress = Reaches(guest, OutsideAddress);
        await world.Networks.TearDownAsync("ingress", Ct);
        var afterTearDown = Reaches(guest, OutsideAddress);

        Assert.False(fromOutside, "the outside opened a connection into the sandbox's namespace");
        Assert.True(fromHost);
        Assert.True(egress, "the guest did not reach the outside through NAT");
        Assert.False(afterTearDown, "the guest still reaches the outside after its network was torn down");
    }
}
