using Kiln.Api;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Sandbox;

public sealed class StartPathTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<FullVmConfiguration> StartAndExportAsync(TempRoot root, string id, MicrovmStartPath path)
    {
        await using var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { StartPath = path });
        var config = SandboxTarget.Fake(root).Config(root) with { MemoryHotplug = new MemoryHotplugSettings(TotalSizeMiB: 1024) };
        await driver.CreateAsync(id, config, Ct);
        await driver.AddDeviceAsync(new BlockDevice(LifecycleTests.MakeDisk(root, id + "-q.img", 1)) { Id = "queued" }, Ct);
        await driver.StartAsync(Ct);
        Assert.Equal(SandboxState.Running, driver.State);
        return await driver.Api!.GetExportVmConfigAsync(Ct);
    }

    [Fact]
    public async Task A_sandbox_started_from_a_config_file_is_configured_as_the_api_sequence_configures_it()
    {
        using var root = new TempRoot();

        var viaApi = await StartAndExportAsync(root, "api", MicrovmStartPath.Api);
        var viaFile = await StartAndExportAsync(root, "file", MicrovmStartPath.ConfigFile);

        Assert.Equal(viaApi.Drives!.Select(d => d.DriveId), viaFile.Drives!.Select(d => d.DriveId));
        Assert.Equal(["rootfs", "drive_0", "drive_1", "queued"], viaFile.Drives!.Select(d => d.DriveId));
        Assert.Equal(viaApi.MachineConfig, viaFile.MachineConfig);
        Assert.Equal(viaApi.MemoryHotplug!.TotalSizeMib, viaFile.MemoryHotplug!.TotalSizeMib);
        Assert.Equal(viaApi.BootSource!.BootArgs, viaFile.BootSource!.BootArgs);
    }
}
