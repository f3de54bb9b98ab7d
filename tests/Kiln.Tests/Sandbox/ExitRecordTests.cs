using System.Diagnostics;
using Kiln.Host;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

/// <summary>A VMM that dies on its own: the record (read raw, as another process would) comes to say so.</summary>
public sealed class ExitRecordTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<SandboxStateFile> RawAsync(string root, string id) =>
        (await SandboxStateFile.TryReadAsync(SandboxPaths.For(root, id).StatePath, Ct))!;

    private static async Task KillAsync(int pid)
    {
        var identity = ProcFs.TryGetIdentity(pid)!;
        using (var p = Process.GetProcessById(pid))
            p.Kill();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (ProcFs.IsSameProcess(identity))
        {
            Assert.True(DateTime.UtcNow < deadline, "the VMM outlived SIGKILL");
            await Task.Delay(10, Ct);
        }
    }

    [Fact]
    public async Task The_owners_exit_watcher_records_a_vmm_that_died_on_its_own_as_exited_with_its_signal()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("died", config, Ct);
        await driver.StartAsync(Ct);

        await KillAsync(driver.Pid!.Value);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        SandboxStateFile record;
        while ((record = await RawAsync(config.RootDirectory, "died")).State != SandboxState.Exited)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the record still says {record.State}");
            await Task.Delay(10, Ct);
        }
        Assert.Equal((null, 9), (record.ExitCode, record.ExitSignal));
        var info = await SandboxCatalog.GetAsync(config.RootDirectory, "died", Ct);
        Assert.Equal((SandboxState.Exited, (int?)9), (info.State, info.ExitSignal));
    }

    [Fact]
    public async Task A_reader_that_notices_a_detached_vmm_gone_records_it_as_exited()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        int pid;
        await using (var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Ownership = VmmOwnership.Detached }))
        {
            await driver.CreateAsync("gone", config, Ct);
            await driver.StartAsync(Ct);
            pid = driver.Pid!.Value;
        }
        await KillAsync(pid);
        Assert.Equal(SandboxState.Running, (await RawAsync(config.RootDirectory, "gone")).State);

        var listed = await SandboxCatalog.ListAsync(config.RootDirectory, Ct);

        Assert.Equal(SandboxState.Exited, Assert.Single(listed).State);
        var record = await RawAsync(config.RootDirectory, "gone");
        Assert.Equal((SandboxState.Exited, pid), (record.State, record.Pid));
        Assert.Equal((null, null), (record.ExitCode, record.ExitSignal));
    }

    [Fact]
    public async Task A_reader_leaves_the_record_alone_while_another_driver_holds_the_sandbox()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        int pid;
        await using (var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { Ownership = VmmOwnership.Detached }))
        {
            await driver.CreateAsync("held", config, Ct);
            await driver.StartAsync(Ct);
            pid = driver.Pid!.Value;
        }
        await KillAsync(pid);
        var paths = SandboxPaths.For(config.RootDirectory, "held");

        using (await SandboxLock.AcquireAsync(paths.Directory, "held", TimeSpan.FromSeconds(5), TimeProvider.System, Ct))
        {
            var info = await SandboxCatalog.GetAsync(config.RootDirectory, "held", Ct);

            Assert.Equal(SandboxState.Exited, info.State);
            Assert.Equal(SandboxState.Running, (await RawAsync(config.RootDirectory, "held")).State);
        }
    }
}
