using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

public sealed class MicrovmTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_described_microvm_boots_to_running_with_its_drives_in_order()
    {
        using var root = new TempRoot();
        var description = MicrovmFixture.Description(root);

        await using var vm = await Microvm.BootAsync(description, MicrovmFixture.Options(root), Ct);

        Assert.Equal(MicrovmState.Running, vm.State);
        Assert.Null(vm.ExitStatus);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
        var config = await vm.Client.GetExportVmConfigAsync(Ct);
        Assert.Equal(["rootfs", "data"], config.Drives!.Select(d => d.DriveId));
        Assert.Equal(2, config.MachineConfig!.VcpuCount);
    }

    [Fact]
    public async Task A_microvm_booted_from_a_config_file_runs_with_the_same_configuration()
    {
        using var root = new TempRoot();
        var description = MicrovmFixture.Description(root);
        var options = MicrovmFixture.Options(root) with { StartPath = MicrovmStartPath.ConfigFile };

        await using var vm = await Microvm.BootAsync(description, options, Ct);

        Assert.Equal(MicrovmState.Running, vm.State);
        var config = await vm.Client.GetExportVmConfigAsync(Ct);
        Assert.Equal(["rootfs", "data"], config.Drives!.Select(d => d.DriveId));
        Assert.Equal(description.BootSource.BootArgs, config.BootSource!.BootArgs);
        Assert.Contains("--config-file", File.ReadAllText($"/proc/{vm.Pid}/cmdline").Split('\0'));
    }

    [Fact]
    public async Task Pause_and_resume_move_the_state_machine_and_firecracker_agrees()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);

        await vm.PauseAsync(Ct);
        Assert.Equal(MicrovmState.Paused, vm.State);
        Assert.Equal(InstanceState.Paused, (await vm.Client.DescribeInstanceAsync(Ct)).State);

        await vm.ResumeAsync(Ct);
        Assert.Equal(MicrovmState.Running, vm.State);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
    }

    [Fact]
    public async Task Resuming_a_running_microvm_fails_naming_the_expected_and_actual_state()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);

        var e = await Assert.ThrowsAsync<MicrovmStateException>(() => vm.ResumeAsync(Ct));

        Assert.Equal(MicrovmState.Running, e.Actual);
        Assert.Equal([MicrovmState.Paused], e.Expected);
        Assert.Contains("resume", e.Message);
    }

    [Fact]
    public async Task A_paused_microvm_writes_a_snapshot_and_a_running_one_refuses()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);
        var parameters = new SnapshotCreateParams { SnapshotPath = root.Combine("vm.state"), MemFilePath = root.Combine("vm.mem"), SnapshotType = SnapshotType.Full };

        await Assert.ThrowsAsync<MicrovmStateException>(() => vm.CreateSnapshotAsync(parameters, Ct));
        await vm.PauseAsync(Ct);
        await vm.CreateSnapshotAsync(parameters, Ct);

        Assert.True(File.Exists(root.Combine("vm.state")));
        Assert.Equal(128L * 1024 * 1024, new FileInfo(root.Combine("vm.mem")).Length);
    }

    [Fact]
    public async Task Updating_a_drive_swaps_its_backing_file()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);
        File.WriteAllText(root.Combine("other.img"), "other");

        await vm.UpdateDriveAsync(new PartialDrive { DriveId = "data", PathOnHost = root.Combine("other.img") }, Ct);

        var config = await vm.Client.GetExportVmConfigAsync(Ct);
        Assert.Equal(root.Combine("other.img"), config.Drives!.Single(d => d.DriveId == "data").PathOnHost);
    }

    [Fact]
    public async Task An_attached_microvm_drives_the_same_vmm_and_leaves_it_running_when_disposed()
    {
        using var root = new TempRoot();
        var options = MicrovmFixture.Options(root);
        await using var booted = await Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct);

        await using (var attached = Microvm.TryAttach(booted.Identity, options, MicrovmState.Running))
        {
            Assert.NotNull(attached);
            Assert.Null(attached.Description);
            await attached.PauseAsync(Ct);
            Assert.Equal(InstanceState.Paused, (await booted.Client.DescribeInstanceAsync(Ct)).State);
        }

        Assert.False(booted.Process.HasExited);
    }

    [Fact]
    public async Task Attaching_to_a_process_that_is_gone_gives_null()
    {
        using var root = new TempRoot();
        var options = MicrovmFixture.Options(root);
        var booted = await Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct);
        var identity = booted.Identity;
        await booted.DisposeAsync();

        Assert.Null(Microvm.TryAttach(identity, options, MicrovmState.Running));
    }
}
