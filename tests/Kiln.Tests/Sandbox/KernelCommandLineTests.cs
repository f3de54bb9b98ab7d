using FsCheck.Xunit;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Sandbox;

public sealed class KernelCommandLineTests : IDisposable
{
    private readonly TempRoot _dir = new();

    public KernelCommandLineTests()
    {
        // A bare filesystem image (nothing in its first sectors, like ext4) and one with an MBR partition table.
        using (var bare = File.Create(BareImage))
            bare.SetLength(1024 * 1024);
        var mbr = new byte[1024 * 1024];
        mbr[0x1BE + 4] = 0x83;
        mbr[0x1BE + 12] = 0xFF;
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        File.WriteAllBytes(PartitionedImage, mbr);
    }

    private string BareImage => _dir.Combine("bare.img");

    private string PartitionedImage => _dir.Combine("mbr.img");

    public void Dispose() => _dir.Dispose();

    private HypervisorConfig Config(string? image = "", params KernelParam[] extra) => new()
    {
        FirecrackerPath = "/fc",
        KernelPath = "/k",
        ImagePath = image == "" ? BareImage : image,
        InitrdPath = image is null ? "/initrd" : null,
        RootDirectory = "/tmp/r",
        KernelParams = extra,
    };

    [Fact]
    public void A_partitioned_image_boots_from_the_first_partition_of_the_first_drive_with_the_firecracker_defaults() =>
        Assert.Equal("console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd root=/dev/vda1",
            FirecrackerHypervisor.BootArguments(Config(PartitionedImage)));

    [Fact]
    public void A_bare_filesystem_image_boots_from_the_whole_first_drive() =>
        Assert.Equal("console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd root=/dev/vda",
            FirecrackerHypervisor.BootArguments(Config(BareImage)));

    [Fact]
    public void A_configured_root_wins_over_the_partition_table() =>
        Assert.EndsWith("root=/dev/vdb2 quiet",
            FirecrackerHypervisor.BootArguments(Config(PartitionedImage, new KernelParam("root", "/dev/vdb2"), new KernelParam("quiet"))));

    [Fact]
    public void An_initrd_only_guest_has_no_root_parameter() =>
        Assert.DoesNotContain("root=", FirecrackerHypervisor.BootArguments(Config(image: null)));

    [Fact]
    public void There_is_no_acpi_off_because_firecracker_has_acpi_since_1_8() =>
        Assert.DoesNotContain("acpi", FirecrackerHypervisor.BootArguments(Config()));

    [Fact]
    public void A_configured_key_replaces_the_default_in_place_and_new_keys_follow()
    {
        var args = FirecrackerHypervisor.BootArguments(Config("/img", new KernelParam("root", "/dev/vda"), new KernelParam("console", "ttyS1"), new KernelParam("quiet")));
        Assert.Equal("console=ttyS1 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd root=/dev/vda quiet", args);
    }

    [Theory]
    [InlineData("--", null)]
    [InlineData("-x", null)]
    [InlineData("a b", null)]
    [InlineData("a=b", null)]
    [InlineData("init", "/bin/sh -c x")]
    [InlineData("x", "\"quoted\"")]
    [InlineData("x", "a\tb")]
    [InlineData("x", "a\u0001")]
    [InlineData("", "v")]
    public void Parameters_that_could_inject_other_parameters_are_refused(string key, string? value)
    {
        Assert.ThrowsAny<ArgumentException>(() => KernelCommandLine.Validate(key, value));
        Assert.ThrowsAny<ArgumentException>(() => KernelCommandLine.Serialize([(key, value)]));
    }

    [Property]
    public bool A_serialised_command_line_splits_back_into_exactly_the_accepted_parameters(string[] keys, string[] values)
    {
        var parameters = new List<(string, string?)>();
        for (var i = 0; i < (keys?.Length ?? 0); i++)
        {
            var key = keys![i];
            var value = values is { Length: > 0 } ? values[i % values.Length] : null;
            try
            {
                KernelCommandLine.Validate(key, value);
                parameters.Add((key, value));
            }
            catch (ArgumentException)
            {
            }
        }
        var line = KernelCommandLine.Serialize(parameters);
        var tokens = line.Length == 0 ? [] : line.Split(' ');
        return tokens.Length == parameters.Count
            && tokens.Zip(parameters).All(t => t.First == (t.Second.Item2 is null ? t.Second.Item1 : $"{t.Second.Item1}={t.Second.Item2}"));
    }

    [Theory]
    [InlineData(0, "/dev/vda")]
    [InlineData(1, "/dev/vdb")]
    [InlineData(25, "/dev/vdz")]
    [InlineData(26, "/dev/vdaa")]
    [InlineData(27, "/dev/vdab")]
    [InlineData(701, "/dev/vdzz")]
    [InlineData(702, "/dev/vdaaa")]
    public void Guest_device_names_follow_the_kernels_virtblk_naming(int index, string name) =>
        Assert.Equal(name, GuestDeviceNames.ForIndex(index));
}
