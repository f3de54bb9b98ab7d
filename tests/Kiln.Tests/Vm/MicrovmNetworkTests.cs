using System.Text.Json.Nodes;
using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

/// <summary>MMDS and rate limits through the Vm layer, on the stand-in (which opens the TAP: root, a name of its own).</summary>
public sealed class MicrovmNetworkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string UniqueTap() => "kt" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(5));

    private static MachineDescription WithInterface(TempRoot root, RateLimiter? rx = null) => MicrovmFixture.Description(root) with
    {
        Devices = [.. MicrovmFixture.Description(root).Devices, new MachineNetworkInterface(new NetworkInterface { IfaceId = "eth0", HostDevName = UniqueTap(), RxRateLimiter = rx })],
    };

    public static TheoryData<MicrovmStartPath> StartPaths => [MicrovmStartPath.Api, MicrovmStartPath.ConfigFile];

    [Theory]
    [MemberData(nameof(StartPaths))]
    public async Task The_metadata_document_given_before_boot_and_changed_after_round_trips_through_the_api(MicrovmStartPath path)
    {
        Assert.SkipUnless(Environment.UserName == "root", "the stand-in opens TAPs as Firecracker does: root only");
        using var root = new TempRoot();
        var description = WithInterface(root) with
        {
            Mmds = new MmdsConfig { NetworkInterfaces = ["eth0"], Version = MmdsVersion.V2 },
            MmdsDocument = new JsonObject { ["instance"] = new JsonObject { ["id"] = "i-1", ["tags"] = new JsonArray("a", "b") } },
        };

        await using var vm = await Microvm.BootAsync(description, MicrovmFixture.Options(root) with { StartPath = path }, Ct);
        var atBoot = await vm.GetMetadataAsync(Ct);
        await vm.PatchMetadataAsync(new JsonObject { ["instance"] = new JsonObject { ["tags"] = null, ["zone"] = "z1" } }, Ct);
        var patched = await vm.GetMetadataAsync(Ct);
        await vm.PutMetadataAsync(new JsonObject { ["fresh"] = true }, Ct);
        var replaced = await vm.GetMetadataAsync(Ct);

        Assert.True(JsonNode.DeepEquals(description.MmdsDocument, atBoot), atBoot.ToJsonString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"instance":{"id":"i-1","zone":"z1"}}"""), patched), patched.ToJsonString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"fresh":true}"""), replaced), replaced.ToJsonString());
        Assert.Equal(MmdsVersion.V2, (await vm.Client.GetExportVmConfigAsync(Ct)).MmdsConfig!.Version);
    }

    [Fact]
    public async Task Rate_limits_given_at_boot_and_patched_at_run_time_round_trip()
    {
        Assert.SkipUnless(Environment.UserName == "root", "the stand-in opens TAPs as Firecracker does: root only");
        using var root = new TempRoot();
        var atBoot = new RateLimiter { Bandwidth = new TokenBucket { Size = 1_000_000, RefillTime = 100 } };
        await using var vm = await Microvm.BootAsync(WithInterface(root, atBoot), MicrovmFixture.Options(root), Ct);
        var booted = (await vm.Client.GetExportVmConfigAsync(Ct)).NetworkInterfaces!.Single();

        await vm.UpdateNetworkInterfaceAsync(new PartialNetworkInterface { IfaceId = "eth0", TxRateLimiter = new RateLimiter { Ops = new TokenBucket { Size = 50, RefillTime = 1000, OneTimeBurst = 10 } } }, Ct);
        var patched = (await vm.Client.GetExportVmConfigAsync(Ct)).NetworkInterfaces!.Single();

        Assert.Equal((1_000_000L, 100L), (booted.RxRateLimiter!.Bandwidth!.Size, booted.RxRateLimiter.Bandwidth.RefillTime));
        Assert.Equal((50L, 1000L, 10L), (patched.TxRateLimiter!.Ops!.Size, patched.TxRateLimiter.Ops.RefillTime, patched.TxRateLimiter.Ops.OneTimeBurst!.Value));
        Assert.Equal(1_000_000L, patched.RxRateLimiter!.Bandwidth!.Size);
    }

    [Fact]
    public void A_limit_firecracker_would_ignore_is_refused_before_any_process_starts()
    {
        using var root = new TempRoot();
        var description = WithInterface(root, new RateLimiter { Ops = new TokenBucket { Size = 0, RefillTime = 100 } });

        var error = Assert.Throws<MachineDescriptionException>(description.Validate);

        Assert.EndsWith("RxRateLimiter.Ops.Size", error.PropertyName);
    }

    [Fact]
    public async Task A_run_time_limit_firecracker_would_ignore_is_refused_before_the_request()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);

        var error = await Assert.ThrowsAsync<MachineDescriptionException>(() =>
            vm.UpdateNetworkInterfaceAsync(new PartialNetworkInterface { IfaceId = "eth0", RxRateLimiter = new RateLimiter { Bandwidth = new TokenBucket { Size = 10, RefillTime = 0 } } }, Ct));

        Assert.Equal("RxRateLimiter.Bandwidth.RefillTime", error.PropertyName);
    }
}
