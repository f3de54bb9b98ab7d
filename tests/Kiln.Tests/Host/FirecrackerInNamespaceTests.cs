// Firecracker (the stand-in, which opens TAPs as Firecracker does) launched inside a sandbox's namespace finds the TAP
// Kiln made there, and a second VMM cannot take the same TAP.
using System.Security.Cryptography;
using Kiln.Api;
using Kiln.Host.Network;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Host;

public sealed class FirecrackerInNamespaceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(VmmProcess Vmm, FirecrackerClient Client)> LaunchAsync(TempRoot root, string name, string netns)
    {
        var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
        {
            ExecutablePath = SandboxTarget.FakePath,
            Arguments = new VmmArguments(root.Combine(name + ".sock")).WithId(name),
            OutputPath = root.Combine(name + ".log"),
            NetworkNamespacePath = netns,
        }, Ct);
        await Eventually.FileContainsAsync(root.Combine(name + ".log"), "API server started", TimeSpan.FromSeconds(30));
        return (vmm, new FirecrackerClient(root.Combine(name + ".sock")));
    }

    [Fact]
    public async Task A_vmm_launched_in_the_sandbox_namespace_attaches_to_kilns_tap_and_a_second_one_cannot()
    {
        Assert.SkipUnless(TestNetns.Installed("nsenter"), "needs nsenter (util-linux)");
        using var root = new TempRoot();
        using var host = TestNetns.Create();
        var prefix = "kt" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)) + "-";
        var networks = new SandboxNetworks(new SandboxNetworksOptions { StateDirectory = root.Combine("net"), HostNamespacePath = host.Path, NamespacePrefix = prefix });
        var info = (await networks.SetUpAsync("fc", new SandboxNetworkSpec(), Ct))!;
        try
        {
            var (first, firstApi) = await LaunchAsync(root, "a", info.NamespacePath!);
            await using (first)
            using (firstApi)
            {
                var (second, secondApi) = await LaunchAsync(root, "b", info.NamespacePath!);
                await using (second)
                using (secondApi)
                {
                    await firstApi.PutGuestNetworkInterfaceByIDAsync(new NetworkInterface { IfaceId = "eth0", HostDevName = info.TapName!, GuestMac = info.GuestMac }, Ct);
                    var busy = await Assert.ThrowsAsync<FirecrackerApiException>(() =>
                        secondApi.PutGuestNetworkInterfaceByIDAsync(new NetworkInterface { IfaceId = "eth0", HostDevName = info.TapName! }, Ct));

                    Assert.Contains("Device or resource busy (os error 16)", busy.FaultMessage);
                    Assert.Equal(
                        Inode(info.NamespacePath!),
                        Inode($"/proc/{first.Pid}/ns/net"));
                    Assert.Equal(Path.GetFullPath(SandboxTarget.FakePath), first.Identity.ExecutablePath);
                }
            }
        }
        finally
        {
            await networks.TearDownAsync("fc", Ct);
        }

        Assert.False(File.Exists(info.NamespacePath));
        Assert.Empty(networks.List());
    }

    // The namespace's identity: the inode number stat(2) reports, which `ls -Li` prints.
    private static string Inode(string path) => TestNetns.Run("stat", "-L", "-c", "%i", path).Trim();
}
