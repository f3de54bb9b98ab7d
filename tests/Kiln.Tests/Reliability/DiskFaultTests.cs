using System.Diagnostics;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// The sandbox directory on a full file system or a read-only one (a small tmpfs each test mounts on its own temp
/// directory, unmounted when the test ends, passed or not; we are root, so only a read-only mount, not file modes,
/// makes a directory unwritable): the start fails with a typed error, no VMM runs, no file is left half-written.
/// </summary>
public sealed class DiskFaultTests
{
    [Fact]
    public async Task A_start_on_a_full_file_system_fails_with_a_typed_error_and_leaves_nothing_behind()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("full", config, Ct);
        tmpfs.Fill();
        var before = Files(config.RootDirectory);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        Assert.Contains("No space left on device", e.Message, StringComparison.Ordinal);
        AssertNoVmm(driver.SocketPath);
        Assert.Equal(before, Files(config.RootDirectory));
        Assert.Equal(SandboxState.Created, (await RecordAsync(driver.SandboxDirectory)).State);

        // Room again: the same sandbox starts.
        tmpfs.Unfill();
        await driver.StartAsync(Ct);
        Assert.Equal(SandboxState.Running, driver.State);
        await driver.StopAsync(Ct);
    }

    [Fact]
    public async Task A_start_in_a_read_only_sandbox_directory_fails_with_a_typed_error_and_leaves_nothing_behind()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("ro", config, Ct);
        tmpfs.Remount("ro");
        var before = Files(config.RootDirectory);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        Assert.Contains("Read-only file system", e.Message, StringComparison.Ordinal);
        AssertNoVmm(driver.SocketPath);
        Assert.Equal(before, Files(config.RootDirectory));
        Assert.Equal(SandboxState.Created, (await RecordAsync(driver.SandboxDirectory)).State);
    }

    [Fact]
    public async Task Creating_a_sandbox_on_a_full_file_system_fails_with_a_typed_error_and_leaves_no_state_file()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        tmpfs.Fill();
        var before = Files(config.RootDirectory);
        await using var driver = new FirecrackerHypervisor();

        var e = await Assert.ThrowsAnyAsync<SandboxException>(() => driver.CreateAsync("late", config, Ct));

        Assert.Contains("No space left on device", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, Files(config.RootDirectory));
    }

    [Fact]
    public async Task A_full_console_file_system_never_stalls_the_vmm_its_output_is_still_drained_into_the_tail()
    {
        using var root = new TempRoot();
        var consoleDirectory = root.Combine("console");
        using var tmpfs = SmallTmpfs.Mount(consoleDirectory);
        tmpfs.Fill();
        // Far more than a pipe holds (64 KiB): if Kiln stopped reading when the file could not take more, this writer
        // would block for ever (or die of SIGPIPE) and never print its last line or exit.
        var script = root.Script("vmm", "head -c 400000 /dev/zero | tr '\\0' x; echo; echo all-written");
        await using var vmm = await Kiln.Vmm.VmmProcess.LaunchAsync(new Kiln.Vmm.VmmLaunchOptions
        {
            ExecutablePath = script,
            Arguments = new Kiln.Vmm.VmmArguments(root.Combine("api.sock")),
            OutputPath = Path.Combine(consoleDirectory, "console.log"),
        }, Ct);

        var ended = await Task.WhenAny(vmm.Exited, Task.Delay(TimeSpan.FromSeconds(30), Ct));

        Assert.Same(vmm.Exited, ended);
        var tail = vmm.ReadOutputTail();
        Assert.Contains("all-written", tail, StringComparison.Ordinal);
        Assert.Contains("No space left on device", tail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pause_resume_and_hot_plug_on_a_full_file_system_fail_typed_and_leave_the_vm_and_its_record_as_they_were()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        var disk = root.Combine("hot.img");
        File.WriteAllBytes(disk, new byte[4096]);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("busy", config, Ct);
        await driver.StartAsync(Ct);
        var statePath = Path.Combine(driver.SandboxDirectory, "state.json");

        try
        {
            // Running, full: pause and hot-plug fail; the VM runs on, its record and its pool as before.
            tmpfs.Fill();
            var record = await File.ReadAllBytesAsync(statePath, Ct);
            var files = Files(config.RootDirectory);
            var pause = await Assert.ThrowsAsync<SandboxException>(() => driver.PauseAsync(Ct));
            var hotplug = await Assert.ThrowsAsync<SandboxException>(() => driver.HotplugAddAsync(new BlockDevice(disk), Ct));

            Assert.Contains("No space left on device", pause.Message, StringComparison.Ordinal);
            Assert.Contains("No space left on device", hotplug.Message, StringComparison.Ordinal);
            Assert.Equal(SandboxState.Running, driver.State);
            Assert.Equal(Kiln.Api.InstanceState.Running, (await driver.Api!.DescribeInstanceAsync(Ct)).State);
            Assert.All(driver.PoolSlots, s => Assert.Null(s.HostPath));
            var drive = (await driver.Api.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == "drive_0");
            Assert.Equal(driver.PoolSlots[0].DriveId, drive.DriveId);
            Assert.DoesNotContain("hot.img", drive.PathOnHost ?? "", StringComparison.Ordinal);
            Assert.Equal(record, await File.ReadAllBytesAsync(statePath, Ct));
            Assert.Equal(files, Files(config.RootDirectory));

            // Paused, full: resume fails and the VM stays paused, as recorded; with room again it is controllable.
            tmpfs.Unfill();
            await driver.PauseAsync(Ct);
            tmpfs.Fill();
            record = await File.ReadAllBytesAsync(statePath, Ct);
            var resume = await Assert.ThrowsAsync<SandboxException>(() => driver.ResumeAsync(Ct));

            Assert.Contains("No space left on device", resume.Message, StringComparison.Ordinal);
            Assert.Equal(SandboxState.Paused, driver.State);
            Assert.Equal(Kiln.Api.InstanceState.Paused, (await driver.Api.DescribeInstanceAsync(Ct)).State);
            Assert.Equal(record, await File.ReadAllBytesAsync(statePath, Ct));
            tmpfs.Unfill();
            await driver.ResumeAsync(Ct);
            await driver.HotplugAddAsync(new BlockDevice(disk), Ct);
            Assert.Equal(SandboxState.Running, (await RecordAsync(driver.SandboxDirectory)).State);
            await driver.StopAsync(TimeSpan.Zero, Ct);
        }
        finally
        {
            tmpfs.Unfill(); // so that the driver's disposal can record its stop
        }
    }

    [Fact]
    public async Task A_stop_on_a_full_file_system_still_records_that_the_vmm_ended()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("full-stop", config, Ct);
        await driver.StartAsync(Ct);

        try
        {
            tmpfs.Fill();
            await driver.StopAsync(TimeSpan.Zero, Ct);

            AssertNoVmm(driver.SocketPath);
            var record = await RecordAsync(driver.SandboxDirectory);
            Assert.Equal(SandboxState.Stopped, record.State);
            Assert.Null(record.Pid);
            Assert.Equal(SandboxState.Stopped, (await SandboxCatalog.GetAsync(config.RootDirectory, "full-stop", Ct)).State);
            Assert.Empty(Directory.GetFiles(driver.SandboxDirectory, "state.json.tmp-*"));
        }
        finally
        {
            tmpfs.Unfill();
        }
    }

    [Fact]
    public async Task A_hot_unplug_whose_record_cannot_be_written_is_undone_and_reported_typed()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        var disk = root.Combine("hot.img");
        File.WriteAllBytes(disk, new byte[4096]);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("unplug", config, Ct);
        await driver.StartAsync(Ct);
        var added = Assert.IsType<BlockHotplugResult>(await driver.HotplugAddAsync(new BlockDevice(disk), Ct));
        var statePath = Path.Combine(driver.SandboxDirectory, "state.json");

        try
        {
            tmpfs.Fill();
            var record = await File.ReadAllBytesAsync(statePath, Ct);
            var unplug = await Assert.ThrowsAsync<SandboxException>(() => driver.HotplugRemoveAsync(new BlockDevice(disk) { PoolSlot = added.Slot }, Ct));

            Assert.Contains("No space left on device", unplug.Message, StringComparison.Ordinal);
            Assert.Contains("hot-unplug was undone", unplug.Message, StringComparison.Ordinal);
            // As before the unplug: the file in the slot, in the VMM, the driver and the record.
            Assert.Equal(Path.GetFullPath(disk), driver.PoolSlots[added.Slot].HostPath);
            var drive = (await driver.Api!.GetExportVmConfigAsync(Ct)).Drives!.Single(d => d.DriveId == added.DriveId);
            Assert.Equal(Path.GetFullPath(disk), drive.PathOnHost);
            Assert.Equal(record, await File.ReadAllBytesAsync(statePath, Ct));
            Assert.Equal(Path.GetFullPath(disk), (await RecordAsync(driver.SandboxDirectory)).PoolSlots[added.Slot].HostPath);

            // With room again, the unplug works.
            tmpfs.Unfill();
            await driver.HotplugRemoveAsync(new BlockDevice(disk) { PoolSlot = added.Slot }, Ct);
            Assert.All((await RecordAsync(driver.SandboxDirectory)).PoolSlots, s => Assert.Null(s.HostPath));
            await driver.StopAsync(TimeSpan.Zero, Ct);
        }
        finally
        {
            tmpfs.Unfill();
        }
    }

    [Fact]
    public async Task A_snapshot_onto_a_full_file_system_fails_typed_leaves_no_snapshot_file_and_the_vm_stays_controllable()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("snap", config, Ct);
        await driver.StartAsync(Ct);
        await driver.PauseAsync(Ct);
        var statePath = Path.Combine(driver.SandboxDirectory, "state.json");
        try
        {
            tmpfs.Fill();
            var record = await File.ReadAllBytesAsync(statePath, Ct);
            var files = Files(config.RootDirectory);

            var e = await Assert.ThrowsAnyAsync<Exception>(() => driver.SaveAsync(Ct));

            Assert.IsType<Kiln.Api.FirecrackerApiException>(e);
            Assert.Contains("No space left on device", e.Message, StringComparison.Ordinal);
            Assert.Equal(files, Files(config.RootDirectory));
            Assert.Equal(record, await File.ReadAllBytesAsync(statePath, Ct));
            Assert.Equal(SandboxState.Paused, driver.State);
            tmpfs.Unfill();
            await driver.ResumeAsync(Ct);
            Assert.Equal(Kiln.Api.InstanceState.Running, (await driver.Api!.DescribeInstanceAsync(Ct)).State);
            await driver.StopAsync(TimeSpan.Zero, Ct);
        }
        finally
        {
            tmpfs.Unfill(); // so that the driver's disposal can record its stop
        }
    }

    [Theory]
    [InlineData("full")]
    [InlineData("read-only")]
    public async Task A_template_made_onto_a_full_or_read_only_store_fails_typed_leaves_no_half_template_and_the_source_runs_on(string trouble)
    {
        using var root = new TempRoot();
        await using var source = await Kiln.Vm.Microvm.BootAsync(Kiln.Tests.Vm.SnapshotFixture.DescriptionWithVsock(root), Kiln.Tests.Vm.MicrovmFixture.Options(root), Ct);
        var storeRoot = root.Combine("templates");
        using var tmpfs = SmallTmpfs.Mount(storeRoot);
        var store = new Kiln.Vm.Templates.TemplateStore(storeRoot);
        try
        {
            if (trouble == "full")
                tmpfs.Fill();
            else
                tmpfs.Remount("ro");
            var before = Files(storeRoot);

            var e = await Assert.ThrowsAnyAsync<Exception>(() => store.CreateAsync("base", source, Ct));

            // Firecracker's own fault when its snapshot cannot be written; Kiln's typed one when a file of its own cannot.
            Assert.True(e is Kiln.Api.FirecrackerApiException or Kiln.Vm.Templates.TemplateStoreException, $"untyped: {e}");
            Assert.Contains(trouble == "full" ? "No space left on device" : "Read-only file system", e.Message, StringComparison.Ordinal);
            Assert.Equal(before, Files(storeRoot));
            Assert.Empty(store.List());
            Assert.Equal(Kiln.Vm.MicrovmState.Running, source.State);
            Assert.Equal(Kiln.Api.InstanceState.Running, (await source.Client.DescribeInstanceAsync(Ct)).State);

            if (trouble == "full")
                tmpfs.Unfill();
            else
                tmpfs.Remount("rw");
            var template = await store.CreateAsync("base", source, Ct);
            Assert.Equal("base", Assert.Single(store.List()).Name);
            Assert.Equal(Kiln.Vm.MicrovmState.Running, source.State);
            Assert.True(File.Exists(Path.Combine(template.Directory, "template.json")));
        }
        finally
        {
            tmpfs.Remount("rw");
            if (trouble == "full" && File.Exists(Path.Combine(storeRoot, "filler")))
                tmpfs.Unfill();
        }
    }

    /// <summary>A 256 KiB tmpfs mounted on a directory of the test's own, detached when disposed.</summary>
    private sealed class SmallTmpfs : IDisposable
    {
        private readonly string _path;
        private readonly string _filler;

        private SmallTmpfs(string path)
        {
            _path = path;
            _filler = Path.Combine(path, "filler");
        }

        public static SmallTmpfs Mount(string path)
        {
            Assert.SkipUnless(Environment.UserName == "root", "mounting a tmpfs needs root");
            Directory.CreateDirectory(path);
            Run("mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "kiln-test", path);
            return new SmallTmpfs(path);
        }

        /// <summary>Writes a file until the file system is full.</summary>
        public void Fill()
        {
            using var file = new FileStream(_filler, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
            var block = new byte[4096];
            try
            {
                while (true)
                    file.Write(block);
            }
            catch (IOException)
            {
                // ENOSPC: full.
            }
        }

        public void Unfill() => File.Delete(_filler);

        public void Remount(string options) => Run("mount", "-o", "remount," + options, _path);

        public void Dispose() => _ = Kiln.Interop.LibC.Umount2(_path, Kiln.Interop.LibC.MNT_DETACH);

        private static void Run(string program, params string[] arguments)
        {
            var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in arguments)
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEndAsync(Ct);
            _ = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {error.Result}");
        }
    }

    [Fact]
    public async Task A_start_whose_record_cannot_be_put_back_throws_the_starts_own_failure_with_the_record_failure_attached()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        using var tmpfs = SmallTmpfs.Mount(config.RootDirectory);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("full2", config, Ct);
        tmpfs.Fill();

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        // The spawn step's failure (its record could not be written), typed; the failed put-back rides along.
        var cause = Assert.IsType<SandboxException>(e.InnerException);
        Assert.Contains("No space left on device", cause.Message, StringComparison.Ordinal);
        var record = Assert.IsType<SandboxException>(Assert.Single(CleanupFailures.Of(e)));
        Assert.Contains("state file", record.Message, StringComparison.Ordinal);
        AssertNoVmm(driver.SocketPath);
    }
}
