using System.Security.Cryptography;
using Kiln.Host.Network;

namespace Kiln.Tests.Support;

/// <summary>
/// The ground every root network test stands on: "the host" is a namespace the test creates
/// (<see cref="SandboxNetworksOptions.HostNamespacePath"/>) and sandbox namespaces get a prefix of the test's own, so
/// nothing touches the machine's own network. Disposing removes whatever a failing test left.
/// </summary>
public class NetworkWorld : IDisposable
{
    public NetworkWorld()
    {
        Assert.SkipUnless(TestNetns.Installed("nft") && TestNetns.Installed("sysctl"), "needs nft (nftables) and sysctl (procps); .ci/run installs them");
        Host = TestNetns.Create();
        Root = new TempRoot();
        Prefix = "kt" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)) + "-";
        NetworkOptions = new SandboxNetworksOptions { StateDirectory = Root.Combine("net"), HostNamespacePath = Host.Path, NamespacePrefix = Prefix };
        Networks = new SandboxNetworks(NetworkOptions);
    }

    public TempRoot Root { get; }

    public TestNetns Host { get; }

    public string Prefix { get; }

    public SandboxNetworksOptions NetworkOptions { get; }

    public SandboxNetworks Networks { get; }

    public string NamespacePath(string id) => "/run/netns/" + Prefix + id;

    public string InSandbox(string id, params string[] args) => TestNetns.Run(["ip", "netns", "exec", Prefix + id, .. args]);

    public string HostTables() => Host.Exec("nft", "list", "ruleset");

    public void Dispose()
    {
        // Whatever a failing test left: its namespaces, then what a subclass made, then the host namespace (veth ends
        // and nftables go with it).
        foreach (var ns in Directory.GetFiles("/run/netns", Prefix + "*"))
        {
            try
            {
                TestNetns.Run("ip", "netns", "del", Path.GetFileName(ns));
            }
            catch (InvalidOperationException)
            {
                // Gone meanwhile, or busy: the host namespace's removal below takes the rest.
            }
        }
        DisposeMore();
        Host.Dispose();
        Root.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Removes what a subclass added, before the host namespace goes.</summary>
    protected virtual void DisposeMore()
    {
    }
}
