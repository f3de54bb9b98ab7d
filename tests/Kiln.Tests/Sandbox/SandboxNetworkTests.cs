using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Api;
using Kiln.Host.Network;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Sandbox;

/// <summary>
/// A sandbox with a network of its own, on the stand-in (which opens its TAP as Firecracker does, inside the
/// sandbox's namespace). Root only; "the host" is a namespace of the test's, sandbox namespaces get its prefix.
/// </summary>
public sealed class SandboxNetworkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static (FirecrackerHypervisorOptions Options, SandboxNetworks Networks) Options(TempRoot root, TestNetns host, IReadOnlyDictionary<string, string>? env = null)
    {
        var networks = new SandboxNetworksOptions
        {
            StateDirectory = root.Combine("net"),
            HostNamespacePath = host.Path,
            NamespacePrefix = "kt" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)) + "-",
        };
        return (new FirecrackerHypervisorOptions { Networks = networks, Environment = env }, new SandboxNetworks(networks));
    }

    [Fact]
    public async Task An_isolated_sandbox_runs_firecracker_in_its_namespace_with_its_tap_address_mac_and_metadata_and_stop_removes_it()
    {
        using var root = new TempRoot();
        using var host = TestNetns.Create();
        var (options, networks) = Options(root, host);
        var document = new JsonObject { ["role"] = "web", ["keys"] = new JsonArray(1, 2) };
        var config = SandboxTarget.Fake(root).Config(root) with
        {
            Network = new SandboxNetworkSpec { Mode = NetworkMode.Isolated },
            Metadata = new MetadataSettings { Document = document },
        };
        await using var driver = new FirecrackerHypervisor(options);
        await driver.CreateAsync("net1", config, Ct);

        await driver.StartAsync(Ct);
        var info = networks.Get("net1")!;
        var vm = await driver.Api!.GetExportVmConfigAsync(Ct);
        var mmds = await driver.Api.GetMmdsAsync(Ct);
        var vmmNamespace = TestNetns.Run("stat", "-L", "-c", "%i", $"/proc/{driver.Pid}/ns/net").Trim();
        var sandboxNamespace = TestNetns.Run("stat", "-L", "-c", "%i", info.NamespacePath!).Trim();
        await driver.StopAsync(Ct);

        var iface = Assert.Single(vm.NetworkInterfaces!);
        Assert.Equal((FirecrackerHypervisor.SandboxInterfaceId, "tap0", GuestMac.ForSandbox("net1")), (iface.IfaceId, iface.HostDevName, iface.GuestMac));
        Assert.Contains("ip=172.16.0.2::172.16.0.1:255.255.255.252::eth0:off", vm.BootSource!.BootArgs);
        Assert.Equal(MmdsVersion.V2, vm.MmdsConfig!.Version);
        Assert.Equal([FirecrackerHypervisor.SandboxInterfaceId], vm.MmdsConfig.NetworkInterfaces);
        Assert.True(JsonNode.DeepEquals(document, mmds), mmds.ToJsonString());
        Assert.Equal(sandboxNamespace, vmmNamespace);
        Assert.False(File.Exists(info.NamespacePath));
        Assert.Empty(networks.List());
        Assert.Empty(networks.Taps.List());
    }

    [Fact]
    public async Task A_failed_start_removes_the_network_it_made()
    {
        using var root = new TempRoot();
        using var host = TestNetns.Create();
        var (options, networks) = Options(root, host, new Dictionary<string, string> { ["FAKE_FC_FAIL"] = "PUT /actions=400:no boot today" });
        var config = SandboxTarget.Fake(root).Config(root) with { Network = new SandboxNetworkSpec { Mode = NetworkMode.Nat } };
        await using var driver = new FirecrackerHypervisor(options);
        await driver.CreateAsync("net2", config, Ct);

        var error = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        Assert.Equal("instance-start", error.Step);
        Assert.Empty(networks.List());
        Assert.False(File.Exists(networks.Plan("net2", config.Network!)!.NamespacePath));
        Assert.DoesNotContain("kiln", host.Exec("nft", "list", "ruleset"));
        Assert.DoesNotContain("kv", host.Exec("ip", "-o", "link", "show"));
    }

    [Fact]
    public async Task Metadata_without_a_network_is_refused_naming_the_property()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root) with { Metadata = new MetadataSettings() };
        await using var driver = new FirecrackerHypervisor();

        var error = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.CreateAsync("meta", config, Ct));

        Assert.Equal("Metadata", error.PropertyName);
    }

    [Fact]
    public async Task A_jail_network_namespace_beside_a_sandbox_network_is_refused_naming_the_property()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root) with
        {
            Network = new SandboxNetworkSpec { Mode = NetworkMode.Isolated },
            Jail = new Kiln.Vmm.JailSettings { JailerPath = "/bin/true", Uid = 65534, Gid = 65534, NetworkNamespacePath = "/run/netns/mine" },
        };
        await using var driver = new FirecrackerHypervisor();

        var error = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.CreateAsync("jailnet", config, Ct));

        Assert.Equal("Jail.NetworkNamespacePath", error.PropertyName);
    }
}
