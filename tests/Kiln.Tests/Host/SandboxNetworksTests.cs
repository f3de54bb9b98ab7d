using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Kiln.Host.Network;
using Kiln.Tests.Support;

namespace Kiln.Tests.Host;

/// <summary>
/// Root tests: "the host" is a namespace the test creates (<see cref="SandboxNetworksOptions.HostNamespacePath"/>), and
/// sandbox namespaces get a prefix of the test's own, so nothing touches the machine's own network.
/// </summary>
public sealed class SandboxNetworksTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_isolated_sandbox_gets_a_namespace_with_an_addressed_tap_and_no_way_out()
    {
        using var world = new NetworkWorld();

        var info = await world.Networks.SetUpAsync("iso", new SandboxNetworkSpec { Mode = NetworkMode.Isolated }, Ct);

        Assert.NotNull(info);
        Assert.Equal(world.NamespacePath("iso"), info.NamespacePath);
        Assert.Contains("172.16.0.1/30", world.InSandbox("iso", "ip", "-o", "-4", "addr", "show", "dev", "tap0"));
        Assert.Contains("UP", world.InSandbox("iso", "ip", "-o", "link", "show", "dev", "tap0"));
        Assert.Throws<InvalidOperationException>(() => world.InSandbox("iso", "ip", "route", "get", "1.1.1.1"));
        Assert.Equal("0", world.InSandbox("iso", "cat", "/proc/sys/net/ipv4/ip_forward").Trim());
        Assert.Equal("ip=172.16.0.2::172.16.0.1:255.255.255.252::eth0:off", info.KernelIpArgument);
        Assert.Equal(GuestMac.ForSandbox("iso"), info.GuestMac);
        Assert.Null(info.HostVeth);
        Assert.DoesNotContain("kiln", world.HostTables());

        await world.Networks.TearDownAsync("iso", Ct);

        Assert.False(File.Exists(world.NamespacePath("iso")));
        Assert.Empty(world.Networks.List());
        Assert.Empty(world.Networks.Taps.List());
    }

    [Fact]
    public async Task A_nat_sandbox_gets_a_veth_to_the_host_a_default_route_and_its_chains_in_kilns_table()
    {
        using var world = new NetworkWorld();

        var info = await world.Networks.SetUpAsync("nat", new SandboxNetworkSpec { Mode = NetworkMode.Nat, GuestAddress = InterfaceAddress.Parse("192.168.7.10/24", "x") }, Ct);

        Assert.NotNull(info);
        Assert.Contains(info.HostVethAddress!.ToString(), world.Host.Exec("ip", "-o", "-4", "addr", "show", "dev", info.HostVeth!));
        Assert.Contains($"via {info.HostVethAddress.Address}", world.InSandbox("nat", "ip", "route", "get", "1.1.1.1"));
        Assert.Contains("192.168.7.1/24", world.InSandbox("nat", "ip", "-o", "-4", "addr", "show", "dev", "tap0"));
        Assert.Equal("1", world.InSandbox("nat", "cat", "/proc/sys/net/ipv4/ip_forward").Trim());
        Assert.Contains("masquerade", world.InSandbox("nat", "nft", "list", "ruleset"));
        var host = world.HostTables();
        Assert.Contains("table ip kiln", host);
        Assert.Contains("chain nat-nat", host);
        Assert.Contains("chain fwd-nat", host);
        Assert.Equal("ip=192.168.7.10::192.168.7.1:255.255.255.0::eth0:off", info.KernelIpArgument);

        await world.Networks.TearDownAsync("nat", Ct);

        Assert.False(world.Host.HasLink(info.HostVeth!));
        Assert.DoesNotContain("kiln", world.HostTables());
        Assert.False(File.Exists(world.NamespacePath("nat")));
    }

    [Fact]
    public async Task Two_nat_sandboxes_get_their_own_links_and_tearing_one_down_keeps_the_others_rules()
    {
        using var world = new NetworkWorld();
        var a = await world.Networks.SetUpAsync("a", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct);
        var b = await world.Networks.SetUpAsync("b", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct);

        await world.Networks.TearDownAsync("a", Ct);
        var afterA = world.HostTables();
        await world.Networks.TearDownAsync("b", Ct);

        Assert.NotEqual(a!.HostVethAddress, b!.HostVethAddress);
        Assert.NotEqual(a.HostVeth, b.HostVeth);
        Assert.DoesNotContain("chain nat-a", afterA);
        Assert.Contains("chain nat-b", afterA);
        Assert.DoesNotContain("kiln", world.HostTables());
    }

    [Fact]
    public async Task A_failed_start_leaves_no_namespace_device_rule_or_record()
    {
        using var world = new NetworkWorld();
        // A device in the host namespace with the name the sandbox's veth would take: someone else's, refused.
        var veth = "kv" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("clash")))[..10];
        world.Host.Exec("ip", "tuntap", "add", "dev", veth, "mode", "tap");

        await Assert.ThrowsAsync<NetworkException>(() => world.Networks.SetUpAsync("clash", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct));

        Assert.False(File.Exists(world.NamespacePath("clash")));
        Assert.True(world.Host.HasLink(veth), "a device Kiln did not create stays");
        Assert.DoesNotContain("kiln", world.HostTables());
        Assert.Empty(world.Networks.List());
        Assert.Empty(world.Networks.Taps.List());
    }

    [Theory]
    [InlineData("namespace")]
    [InlineData("tap")]
    [InlineData("veth")]
    [InlineData("done")]
    public async Task A_start_failing_at_any_step_leaves_no_namespace_device_rule_or_record(string failingStep)
    {
        using var world = new NetworkWorld();
        world.Networks.AfterStep = step =>
        {
            if (step == failingStep)
                throw new IOException("injected");
        };

        await Assert.ThrowsAsync<IOException>(() => world.Networks.SetUpAsync("fails", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct));

        Assert.False(File.Exists(world.NamespacePath("fails")));
        Assert.DoesNotContain("kiln", world.HostTables());
        Assert.DoesNotContain("kv", world.Host.Exec("ip", "-o", "link", "show"));
        Assert.Empty(world.Networks.List());
        Assert.Empty(world.Networks.Taps.List());
    }

    [Fact]
    public async Task A_sweep_removes_the_network_of_a_killed_owner_and_keeps_a_live_ones()
    {
        using var world = new NetworkWorld();
        await world.Networks.SetUpAsync("dead", new SandboxNetworkSpec { Mode = NetworkMode.Nat }, Ct);
        await world.Networks.SetUpAsync("live", new SandboxNetworkSpec { Mode = NetworkMode.Isolated }, Ct);
        using (var owner = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!)
        {
            await world.Networks.TransferOwnershipAsync("dead", owner.Id, Ct);
            owner.Kill();
            await owner.WaitForExitAsync(Ct);
        }

        var removed = await world.Networks.SweepAsync(Ct);

        Assert.Equal(["dead"], removed);
        Assert.False(File.Exists(world.NamespacePath("dead")));
        Assert.DoesNotContain("kiln", world.HostTables());
        Assert.True(File.Exists(world.NamespacePath("live")));
        Assert.Equal(["live"], world.Networks.List().Select(n => n.SandboxId));
        await world.Networks.TearDownAsync("live", Ct);
    }

    [Fact]
    public async Task In_the_users_namespace_two_sandboxes_cannot_share_a_tap_and_the_namespace_stays()
    {
        using var world = new NetworkWorld();
        using var users = TestNetns.Create();
        var spec = new SandboxNetworkSpec { Mode = NetworkMode.Namespace, NamespacePath = users.Path, TapName = "kshare" };
        await world.Networks.SetUpAsync("one", spec, Ct);

        await Assert.ThrowsAsync<TapOwnedByAnotherSandboxException>(() => world.Networks.SetUpAsync("two", spec, Ct));
        var stillThere = users.HasLink("kshare");
        await world.Networks.TearDownAsync("one", Ct);

        Assert.True(stillThere);
        Assert.False(users.HasLink("kshare"));
        Assert.True(File.Exists(users.Path));
        Assert.Empty(world.Networks.List());
    }

    [Fact]
    public async Task A_second_network_for_the_same_sandbox_is_refused()
    {
        using var world = new NetworkWorld();
        await world.Networks.SetUpAsync("twice", new SandboxNetworkSpec(), Ct);

        await Assert.ThrowsAsync<NetworkException>(() => world.Networks.SetUpAsync("twice", new SandboxNetworkSpec(), Ct));

        Assert.True(File.Exists(world.NamespacePath("twice")));
        await world.Networks.TearDownAsync("twice", Ct);
    }

    public static TheoryData<string, SandboxNetworkSpec, string> BadSpecs => new()
    {
        { "ok", new SandboxNetworkSpec { Mode = NetworkMode.Namespace }, "NamespacePath" },
        { "ok", new SandboxNetworkSpec { Mode = NetworkMode.Namespace, NamespacePath = "relative/ns" }, "NamespacePath" },
        { "ok", new SandboxNetworkSpec { Mode = NetworkMode.Nat, NamespacePath = "/run/netns/x" }, "NamespacePath" },
        { "ok", new SandboxNetworkSpec { GuestAddress = InterfaceAddress.Parse("10.0.0.0/24", "x") }, "GuestAddress" },
        { "ok", new SandboxNetworkSpec { GuestAddress = InterfaceAddress.Parse("10.0.0.3/30", "x") }, "GuestAddress" },
        { "ok", new SandboxNetworkSpec { GuestMac = "01:00:00:00:00:01" }, "GuestMac" },
        { "ok", new SandboxNetworkSpec { GuestMac = "06:00:00:00:00" }, "GuestMac" },
        { "ok", new SandboxNetworkSpec { TapName = "much-too-long-name" }, "TapName" },
        { "../x", new SandboxNetworkSpec(), "SandboxId" },
        { "a b", new SandboxNetworkSpec(), "SandboxId" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public async Task Bad_settings_are_refused_naming_the_property_before_anything_changes(string id, SandboxNetworkSpec spec, string property)
    {
        using var root = new TempRoot();
        var networks = new SandboxNetworks(new SandboxNetworksOptions { StateDirectory = root.Combine("net") });

        var error = await Assert.ThrowsAsync<NetworkConfigurationException>(() => networks.SetUpAsync(id, spec, Ct));

        Assert.Equal(property, error.PropertyName);
        Assert.False(Directory.Exists(root.Combine("net")));
    }

    [Fact]
    public void The_guest_mac_is_derived_from_the_sandbox_id_locally_administered_and_unicast()
    {
        var a = GuestMac.ForSandbox("web");

        Assert.Equal(a, GuestMac.ForSandbox("web"));
        Assert.NotEqual(a, GuestMac.ForSandbox("web2"));
        Assert.StartsWith("06:", a);
        Assert.True(GuestMac.IsValid(a));
    }

    [Theory]
    [InlineData("172.16.0.2/30", "172.16.0.1/30")]
    [InlineData("172.16.0.1/30", "172.16.0.2/30")]
    [InlineData("10.1.2.200/24", "10.1.2.1/24")]
    public void The_tap_takes_the_first_free_host_address_of_the_guests_network(string guest, string tap)
    {
        Assert.Equal(tap, new SandboxNetworkSpec { GuestAddress = InterfaceAddress.Parse(guest, "x") }.TapAddress.ToString());
    }

    [Fact]
    public async Task A_failed_set_up_whose_teardown_fails_too_throws_the_set_up_failure_with_the_teardown_failure_attached()
    {
        using var world = new NetworkWorld();
        var record = Path.Combine(world.NetworkOptions.StateDirectory, "sandbox-both.json");
        var saved = record + ".saved";
        world.Networks.AfterStep = step =>
        {
            if (step != "tap")
                return;
            // The record replaced by a directory: the teardown cannot read it.
            File.Move(record, saved);
            Directory.CreateDirectory(Path.Combine(record, "blocker"));
            throw new IOException("injected");
        };

        var e = await Assert.ThrowsAsync<IOException>(() => world.Networks.SetUpAsync("both", new SandboxNetworkSpec { Mode = NetworkMode.Isolated }, Ct));

        Assert.Equal("injected", e.Message);
        Assert.Single(CleanupFailures.Of(e));
        // The record back: the teardown now finishes the job.
        Directory.Delete(record, recursive: true);
        File.Move(saved, record);
        await world.Networks.TearDownAsync("both", Ct);
        Assert.False(File.Exists(world.NamespacePath("both")));
    }
}
