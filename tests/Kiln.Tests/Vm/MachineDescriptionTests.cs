using System.Text.Json.Nodes;
using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

public sealed class MachineDescriptionTests
{
    private static MachineDrive DriveOf(string id, string? step = null) =>
        new(new Drive { DriveId = id, PathOnHost = "/img/" + id, IsRootDevice = false }) { Step = step };

    private static MachineDescription Minimal() => new()
    {
        BootSource = new BootSource { KernelImagePath = "/boot/vmlinux" },
        MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
    };

    public static TheoryData<string, MachineDescription> BadDescriptions => new()
    {
        { "BootSource.KernelImagePath", Minimal() with { BootSource = new BootSource { KernelImagePath = "" } } },
        { "MachineConfig.VcpuCount", Minimal() with { MachineConfig = new MachineConfiguration { VcpuCount = 0, MemSizeMib = 128 } } },
        { "MachineConfig.MemSizeMib", Minimal() with { MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 0 } } },
        { "Devices[1].Drive.DriveId", Minimal() with { Devices = [DriveOf("a"), DriveOf("a")] } },
        { "Devices[0].Drive.DriveId", Minimal() with { Devices = [DriveOf("drive-0")] } },
        { "Devices[0].Interface.HostDevName", Minimal() with { Devices = [new MachineNetworkInterface(new NetworkInterface { IfaceId = "eth0", HostDevName = "a-tap-name-far-too-long" })] } },
        { "Devices[0].Vsock.GuestCid", Minimal() with { Devices = [new MachineVsock(new Vsock { GuestCid = 2, UdsPath = "/tmp/v.sock" })] } },
        { "Devices[1]", Minimal() with { Devices = [new MachineVsock(new Vsock { GuestCid = 3, UdsPath = "/tmp/a.sock" }), new MachineVsock(new Vsock { GuestCid = 4, UdsPath = "/tmp/b.sock" })] } },
        { "Mmds.NetworkInterfaces", Minimal() with { Mmds = new MmdsConfig { NetworkInterfaces = ["eth9"] } } },
        { "Balloon.AmountMib", Minimal() with { Balloon = new Balloon { AmountMib = 256, DeflateOnOom = true } } },
    };

    [Theory]
    [MemberData(nameof(BadDescriptions))]
    public void Validation_names_the_bad_property(string property, MachineDescription description)
    {
        var e = Assert.Throws<MachineDescriptionException>(description.Validate);

        Assert.Equal(property, e.PropertyName);
        Assert.StartsWith(property + ": ", e.Message);
    }

    [Fact]
    public async Task An_invalid_description_is_refused_before_any_process_starts()
    {
        using var root = new TempRoot();
        var description = Minimal() with { Devices = [DriveOf("a"), DriveOf("a")] };

        await Assert.ThrowsAsync<MachineDescriptionException>(() =>
            Microvm.BootAsync(description, MicrovmFixture.Options(root), TestContext.Current.CancellationToken));

        Assert.Empty(Directory.GetFileSystemEntries(root.Path));
    }

    [Fact]
    public void The_boot_plan_groups_labelled_devices_into_one_step_each_and_names_the_rest_by_id()
    {
        var description = Minimal() with
        {
            Devices =
            [
                DriveOf("rootfs", "rootfs"), DriveOf("drive_0", "block-pool"), DriveOf("drive_1", "block-pool"), DriveOf("extra"),
                new MachineNetworkInterface(new NetworkInterface { IfaceId = "eth0", HostDevName = "tap0" }),
                new MachineVsock(new Vsock { GuestCid = 3, UdsPath = "/tmp/v.sock" }),
            ],
            MemoryHotplug = new MemoryHotplugConfig { TotalSizeMib = 1024 },
            Mmds = new MmdsConfig { NetworkInterfaces = ["eth0"] },
        };

        Assert.Equal(
            ["machine-config", "boot-source", "rootfs", "block-pool", "drive-extra", "network-eth0", "vsock", "memory-hotplug", "mmds-config", "instance-start"],
            BootPlan.For(description).StepNames);
    }

    [Fact]
    public void The_config_file_uses_firecrackers_vmm_config_keys_and_keeps_the_drive_order()
    {
        var description = Minimal() with { Devices = [DriveOf("b"), DriveOf("a")], MemoryHotplug = new MemoryHotplugConfig { TotalSizeMib = 1024 } };

        var document = JsonNode.Parse(ConfigFile.Serialize(description))!.AsObject();

        Assert.Equal(["boot-source", "drives", "machine-config", "memory-hotplug"], document.Select(p => p.Key).Order());
        Assert.Equal(["b", "a"], document["drives"]!.AsArray().Select(d => (string)d!["drive_id"]!));
        Assert.Equal("/boot/vmlinux", (string)document["boot-source"]!["kernel_image_path"]!);
    }

    [Fact]
    public void A_config_file_without_drives_still_has_the_drives_key()
    {
        var document = JsonNode.Parse(ConfigFile.Serialize(Minimal()))!.AsObject();

        Assert.Empty(document["drives"]!.AsArray());
    }
}
