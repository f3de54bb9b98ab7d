using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

/// <summary>A microVM description and options on the stand-in, in a test's own temp directory.</summary>
internal static class MicrovmFixture
{
    public const string RebootingArgs = "console=ttyS0 reboot=k panic=1";

    public static MachineDescription Description(TempRoot root, string bootArgs = RebootingArgs)
    {
        File.WriteAllText(root.Combine("vmlinux"), "not a kernel");
        File.WriteAllText(root.Combine("rootfs.ext4"), "not a filesystem");
        File.WriteAllText(root.Combine("data.img"), "data");
        return new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = root.Combine("vmlinux"), BootArgs = bootArgs },
            MachineConfig = new MachineConfiguration { VcpuCount = 2, MemSizeMib = 128 },
            Devices =
            [
                new MachineDrive(new Drive { DriveId = "rootfs", PathOnHost = root.Combine("rootfs.ext4"), IsRootDevice = true, IsReadOnly = true }),
                new MachineDrive(new Drive { DriveId = "data", PathOnHost = root.Combine("data.img"), IsRootDevice = false, IsReadOnly = false }),
            ],
        };
    }

    public static MicrovmOptions Options(TempRoot root, Dictionary<string, string>? knobs = null) => new()
    {
        FirecrackerPath = SandboxTarget.FakePath,
        SocketPath = root.Combine("fc.sock"),
        ConsolePath = root.Combine("console.log"),
        LogPath = root.Combine("firecracker.log"),
        Id = "test-vm",
        WorkingDirectory = root.Path,
        Environment = knobs,
        StopTimeout = TimeSpan.FromSeconds(5),
    };
}
