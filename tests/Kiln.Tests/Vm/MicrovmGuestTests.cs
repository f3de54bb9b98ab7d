using System.Text.RegularExpressions;
using Kiln.Api;
using Kiln.Tests.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vmm;

namespace Kiln.Tests.Vm;

/// <summary>
/// The Vm layer with a guest: on the stand-in always, and on real Firecracker with the VM tier's guest. Waits on the
/// guest are for lines it prints, bounded by the target's boot timeout.
/// </summary>
public sealed class MicrovmGuestTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Setup(MachineDescription Description, MicrovmOptions Options, SandboxTarget Target, string DataDisk);

    /// <summary>The target's guest (its rootfs as the read-only root device, or its initramfs) and an empty data drive.</summary>
    private static Setup Describe(TempRoot root, string targetName)
    {
        var target = SandboxTarget.For(targetName, root);
        List<MachineDevice> devices = [];
        if (target.ImagePath is not null)
            devices.Add(new MachineDrive(new Drive { DriveId = "rootfs", PathOnHost = target.ImagePath, IsRootDevice = true, IsReadOnly = true }));
        var empty = root.Combine("empty.img");
        File.WriteAllBytes(empty, []);
        devices.Add(new MachineDrive(new Drive { DriveId = "data", PathOnHost = empty, IsRootDevice = false, IsReadOnly = false }));
        var bootArgs = string.Join(' ', ["console=ttyS0 reboot=k panic=1 pci=off", .. target.KernelParams.Select(p => p.ToString())]);
        var description = new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = target.KernelPath, InitrdPath = target.InitrdPath, BootArgs = bootArgs },
            MachineConfig = new MachineConfiguration { VcpuCount = 2, MemSizeMib = target.MemoryMiB },
            Devices = devices,
        };
        var options = new MicrovmOptions
        {
            FirecrackerPath = target.FirecrackerPath,
            SocketPath = root.Combine("fc.sock"),
            ConsolePath = root.Combine("console.log"),
            LogPath = root.Combine("firecracker.log"),
            Id = "guest-vm",
            WorkingDirectory = root.Path,
            StopTimeout = TimeSpan.FromSeconds(5),
            BootTimeout = target.BootTimeout,
        };
        // The data drive's name in the guest: after the root device, if any.
        return new Setup(description, options, target, target.ImagePath is null ? "vda" : "vdb");
    }

    private static Task<int> WaitForConsoleAsync(Microvm vm, Setup setup, Regex pattern, int from = 0) =>
        GuestConsole.WaitForAsync(setup.Options.ConsolePath, () => vm.State is MicrovmState.Exited, pattern, setup.Target.BootTimeout, from);

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_booted_guest_sees_a_drive_update_and_the_microvm_pauses_snapshots_resumes_and_stops(string target)
    {
        using var root = new TempRoot();
        var setup = Describe(root, target);
        await using var vm = await Microvm.BootAsync(setup.Description, setup.Options, Ct);
        var seen = await WaitForConsoleAsync(vm, setup, setup.Target.ReadyPattern);

        await vm.UpdateDriveAsync(new PartialDrive { DriveId = "data", PathOnHost = LifecycleTests.MakeDisk(root, "data.img", 4) }, Ct);
        await WaitForConsoleAsync(vm, setup, new Regex($@"{setup.DataDisk}: detected capacity change from 0 to 8192\b"), seen);
        await vm.PauseAsync(Ct);
        var snapshot = new SnapshotCreateParams { SnapshotPath = root.Combine("vm.state"), MemFilePath = root.Combine("vm.mem"), SnapshotType = SnapshotType.Full };
        await vm.CreateSnapshotAsync(snapshot, Ct);
        await vm.ResumeAsync(Ct);
        var threads = vm.GetVcpuThreadIds();
        var outcome = await vm.StopAsync(cancellationToken: Ct);

        Assert.True(File.Exists(snapshot.SnapshotPath));
        Assert.Equal(setup.Target.MemoryMiB * 1024L * 1024, new FileInfo(snapshot.MemFilePath).Length);
        Assert.Equal([0, 1], threads.Keys.Order());
        Assert.Equal(ShutdownActionKind.Terminate, outcome.EndedBy);
        Assert.Equal(MicrovmState.Exited, vm.State);
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_microvm_started_from_a_config_file_boots_its_guest(string target)
    {
        using var root = new TempRoot();
        var setup = Describe(root, target);

        await using var vm = await Microvm.BootAsync(setup.Description, setup.Options with { StartPath = MicrovmStartPath.ConfigFile }, Ct);

        await WaitForConsoleAsync(vm, setup, setup.Target.ReadyPattern);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
        await vm.StopAsync(cancellationToken: Ct);
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_graceful_stop_ends_the_guest_with_Ctrl_Alt_Del_and_firecracker_exits_0(string target)
    {
        using var root = new TempRoot();
        var setup = Describe(root, target);
        await using var vm = await Microvm.BootAsync(setup.Description, setup.Options, Ct);
        await WaitForConsoleAsync(vm, setup, setup.Target.ReadyPattern);

        // The guest's init must handle Ctrl-Alt-Del; a slow guest may take a while to shut down.
        var outcome = await vm.StopAsync(ShutdownPlan.Graceful(setup.Target.BootTimeout, TimeSpan.FromSeconds(5)), Ct);

        Assert.Equal(ShutdownActionKind.CtrlAltDel, outcome.EndedBy);
        Assert.Equal(new VmmProcessState.Exited(0), outcome.ExitStatus);
    }
}
