using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

/// <summary>A stand-in microVM with a vsock device, booted, paused and snapshotted into a test's temp directory.</summary>
internal static class SnapshotFixture
{
    public const int EchoPort = 5000;

    public static MachineDescription DescriptionWithVsock(TempRoot root) => MicrovmFixture.Description(root) with
    {
        Devices = [.. MicrovmFixture.Description(root).Devices, new MachineVsock(new Vsock { GuestCid = 3, UdsPath = root.Combine("v.sock") })],
    };

    /// <summary>Boots, pauses, snapshots into <c>snap/</c> and stops the source VM; its drive files stay.</summary>
    public static async Task<SnapshotFiles> TakeAsync(TempRoot root, CancellationToken cancellationToken)
    {
        var description = DescriptionWithVsock(root);
        Directory.CreateDirectory(root.Combine("snap"));
        var files = new SnapshotFiles(root.Combine("snap", "state"), root.Combine("snap", "mem"));
        await using var vm = await Microvm.BootAsync(description, MicrovmFixture.Options(root), cancellationToken);
        await vm.PauseAsync(cancellationToken);
        await vm.CreateSnapshotAsync(new SnapshotCreateParams { SnapshotPath = files.StatePath, MemFilePath = files.MemoryPath }, cancellationToken);
        await vm.StopAsync(cancellationToken: cancellationToken);
        return files;
    }

    /// <summary>Options for a restored VM in <paramref name="dir"/> (its own socket, console and log).</summary>
    public static MicrovmOptions OptionsIn(TempRoot root, string dir, Dictionary<string, string>? knobs = null)
    {
        Directory.CreateDirectory(root.Combine(dir));
        return MicrovmFixture.Options(root, knobs) with
        {
            SocketPath = root.Combine(dir, "fc.sock"),
            ConsolePath = root.Combine(dir, "console.log"),
            LogPath = root.Combine(dir, "firecracker.log"),
            Id = dir,
        };
    }
}
