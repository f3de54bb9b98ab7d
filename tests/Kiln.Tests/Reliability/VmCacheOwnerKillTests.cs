using Kiln.Sandbox;
using Kiln.Tests.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// The process holding a VM cache (tests/Kiln.TestOwner <c>vm-cache</c>) SIGKILLed while a refill's VMM is being
/// restored, and with every slot full: the cached VMMs are owned, so none outlives it; its directory lock dies with
/// it, so another process's cache takes the directory, clears the dead cache's slots, fills itself and leaves nothing
/// when disposed.
/// </summary>
public sealed class VmCacheOwnerKillTests
{
    public static TheoryData<string> Phases => ["kiln.vm.restore.api-ready", "kiln.vm.restore.snapshot-load", "operation-done"];

    [Theory]
    [MemberData(nameof(Phases))]
    public async Task No_cached_vmm_outlives_a_sigkilled_cache_owner_and_the_next_cache_takes_its_directory(string phase)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await VmCacheTests.TemplateAsync(root, target);
        var directory = root.Combine("cache");

        await using (var host = OwnerHost.StartWith(
            ["vm-cache", "--template", template.Directory, "--firecracker", target.FirecrackerPath, "--dir", directory, "--size", "2", "--hold", phase]))
        {
            await host.WaitForLineAsync("HELD " + phase);
            if (phase != "kiln.vm.restore.api-ready")
                Assert.NotEmpty(ProcessScan.WithCommandLineContaining(directory)); // a VMM was there to die
            host.Kill();
        }

        await Eventually.TrueAsync(() => ProcessScan.WithCommandLineContaining(directory).Count == 0, TimeSpan.FromSeconds(20),
            "every cached VMM dies with its owner");
        Assert.NotEmpty(Directory.GetDirectories(directory, "slot-*")); // what the dead cache left

        await using (var next = await VmCache.StartAsync(new VmCacheOptions
        {
            TemplateDirectory = template.Directory,
            FirecrackerPath = target.FirecrackerPath,
            Directory = directory,
            Size = 2,
        }, Ct))
        {
            await next.WaitUntilFullAsync(Ct);
            Assert.Equal(2, next.ReadyCount);
            Assert.Equal(2, ProcessScan.WithCommandLineContaining(directory).Count);
        }
        Assert.Empty(ProcessScan.WithCommandLineContaining(directory));
        Assert.False(Directory.Exists(directory) && Directory.GetDirectories(directory, "slot-*").Length > 0, "a slot outlived the cache");
    }
}
