using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Host.Network;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Sandbox;

/// <summary>The metadata document of a running sandbox through the driver.</summary>
public sealed class MetadataTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_document_given_at_boot_is_patched_and_replaced_through_the_driver()
    {
        using var root = new TempRoot();
        using var host = TestNetns.Create();
        var networks = new SandboxNetworksOptions
        {
            StateDirectory = root.Combine("net"),
            HostNamespacePath = host.Path,
            NamespacePrefix = "kt" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)) + "-",
        };
        var config = SandboxTarget.Fake(root).Config(root) with
        {
            Network = new SandboxNetworkSpec { Mode = NetworkMode.Isolated },
            Metadata = new MetadataSettings { Document = new JsonObject { ["role"] = "web", ["zone"] = "a" } },
        };
        await using var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Networks = networks });
        await driver.CreateAsync("meta", config, Ct);
        await driver.StartAsync(Ct);

        var atBoot = await driver.GetMetadataAsync(Ct);
        var patched = await driver.PatchMetadataAsync(new JsonObject { ["zone"] = null, ["tags"] = new JsonArray("x") }, Ct);
        await driver.PauseAsync(Ct);
        var replaced = await driver.PutMetadataAsync(new JsonObject { ["fresh"] = true }, Ct);
        await driver.StopAsync(Ct);

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"role":"web","zone":"a"}"""), atBoot), atBoot.ToJsonString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"role":"web","tags":["x"]}"""), patched), patched.ToJsonString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"fresh":true}"""), replaced), replaced.ToJsonString());
        await Assert.ThrowsAsync<SandboxStateException>(() => driver.GetMetadataAsync(Ct));
    }

    [Fact]
    public async Task A_sandbox_without_a_metadata_service_refuses_naming_the_property()
    {
        using var root = new TempRoot();
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("nometa", SandboxTarget.Fake(root).Config(root), Ct);
        await driver.StartAsync(Ct);

        var error = await Assert.ThrowsAsync<SandboxConfigurationException>(() => driver.PatchMetadataAsync(new JsonObject { ["a"] = 1 }, Ct));
        await driver.StopAsync(Ct);

        Assert.Equal("Metadata", error.PropertyName);
    }
}
