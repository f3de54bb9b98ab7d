// `kiln` end to end with a guest: against the stand-in always, and against real Firecracker with the VM tier's guest
// (KILN_FIRECRACKER, /dev/kvm, KILN_TEST_KERNEL, KILN_TEST_ROOTFS and/or KILN_TEST_INITRD, KILN_TEST_KERNEL_ARGS).
// Every command is its own kiln process, so each step is also a re-attach from another process. Waits on the guest
// are for lines it prints (KILN_TEST_READY_PATTERN), bounded by KILN_TEST_BOOT_TIMEOUT.
using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

public sealed class RealFirecrackerTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    public static TheoryData<string> Targets => ["stand-in", "real"];

    private sealed record Guest(string Kernel, string? Initrd, string? Rootfs, string KernelArgs, Regex Ready, TimeSpan BootTimeout);

    /// <summary>The guest to run; for real Firecracker also points kiln at it (skipping when the machine has none).</summary>
    private Guest For(string target)
    {
        if (target == "stand-in")
            return new Guest(_root.Kernel, null, _root.Rootfs, "", new Regex(RealFirecracker.DefaultReadyPattern), TimeSpan.FromSeconds(60));
        var real = RealFirecracker.RequireGuest();
        _root.Environment["KILN_FIRECRACKER"] = real.Firecracker;
        return new Guest(real.Kernel, real.Initrd, real.Rootfs, real.KernelArgs, real.ReadyPattern, real.BootTimeout);
    }

    private static string[] RunArgs(Guest guest, string name, params string[] extra)
    {
        List<string> args = ["run", "--name", name, "--kernel", guest.Kernel, "--vcpus", "2", "--memory", "256", .. extra];
        if (guest.Initrd is not null)
            args.AddRange(["--initrd", guest.Initrd]);
        if (guest.Rootfs is not null)
            args.AddRange(["--rootfs", guest.Rootfs]);
        if (guest.KernelArgs.Length > 0)
            args.AddRange(["--kernel-args", guest.KernelArgs]);
        return [.. args];
    }

    private async Task<string> StateAsync(string name) => (await _root.PsAsync(name)).GetProperty("state").GetString()!;

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task A_detached_vm_boots_and_other_kiln_processes_hot_plug_what_the_guest_sees_then_pause_snapshot_stop_and_remove_it(string target)
    {
        var guest = For(target);
        var run = await _root.RunAsync([.. RunArgs(guest, "vm", "--detach")]);
        Assert.True(run.ExitCode == 0, run.ToString());
        await using var console = _root.Start("logs", "vm", "--follow");
        var seen = await console.WaitForOutputAsync(guest.Ready, guest.BootTimeout);
        Assert.Equal("Running", await StateAsync("vm"));

        var threads = await _root.RunAsync("threads", "vm", "--json");
        Assert.True(threads.ExitCode == 0, threads.ToString());
        Assert.Equal(2, threads.Json().GetProperty("vcpus").GetArrayLength());
        var inspect = await _root.RunAsync("inspect", "vm", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal(2, inspect.Json().GetProperty("vmConfig").GetProperty("machine-config").GetProperty("vcpu_count").GetInt32());

        // Hot-plug and unplug, as the guest kernel reports them.
        var add = await _root.RunAsync("drive", "add", "vm", _root.CreateFile("data.img", 4 * 1024 * 1024), "--json");
        Assert.True(add.ExitCode == 0, add.ToString());
        var disk = add.Json().GetProperty("guestDevice").GetString()!.Replace("/dev/", "", StringComparison.Ordinal);
        seen = await console.WaitForOutputAsync(new Regex($@"{disk}: detected capacity change from \d+ to 8192\b"), guest.BootTimeout, seen);
        var rm = await _root.RunAsync("drive", "rm", "vm", add.Json().GetProperty("slot").GetInt32().ToString());
        Assert.True(rm.ExitCode == 0, rm.ToString());
        await console.WaitForOutputAsync(new Regex($@"{disk}: detected capacity change from 8192 to \d+"), guest.BootTimeout, seen);

        var pause = await _root.RunAsync("pause", "vm");
        Assert.True(pause.ExitCode == 0, pause.ToString());
        Assert.Equal("Paused", await StateAsync("vm"));
        var snapshot = await _root.RunAsync("snapshot", "vm");
        Assert.True(snapshot.ExitCode == 0, snapshot.ToString());
        Assert.Equal("Paused", await StateAsync("vm"));
        var resume = await _root.RunAsync("resume", "vm");
        Assert.True(resume.ExitCode == 0, resume.ToString());
        Assert.Equal("Running", await StateAsync("vm"));

        var stop = await _root.RunAsync("stop", "vm");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal("Stopped", await StateAsync("vm"));
        // The follow ends with the VM.
        await console.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);
        var remove = await _root.RunAsync("rm", "vm");
        Assert.True(remove.ExitCode == 0, remove.ToString());
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task A_foreground_run_streams_the_guest_console_and_SIGTERM_stops_the_vm_and_exits_0(string target)
    {
        var guest = For(target);
        await using var run = _root.Start(RunArgs(guest, "fg"));
        await run.WaitForOutputAsync(guest.Ready, guest.BootTimeout);

        run.Signal(NativeMethods.SIGTERM);
        var result = await run.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("Stopped", await StateAsync("fg"));
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task A_foreground_run_ends_when_another_kiln_process_stops_its_vm(string target)
    {
        var guest = For(target);
        await using var run = _root.Start(RunArgs(guest, "fg2"));
        await run.WaitForOutputAsync(guest.Ready, guest.BootTimeout);

        var stop = await _root.RunAsync("stop", "fg2");
        var result = await run.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("Stopped", await StateAsync("fg2"));
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task Stop_force_kills_a_booted_vm_at_once_and_rm_leaves_nothing(string target)
    {
        var guest = For(target);
        var run = await _root.RunAsync([.. RunArgs(guest, "kill", "--detach")]);
        Assert.True(run.ExitCode == 0, run.ToString());
        await using (var console = _root.Start("logs", "kill", "--follow"))
            await console.WaitForOutputAsync(guest.Ready, guest.BootTimeout);

        var stop = await _root.RunAsync("stop", "kill", "--force");

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal("Stopped", await StateAsync("kill"));
        Assert.True((await _root.RunAsync("rm", "kill")).ExitCode == 0);
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }

    [Fact]
    public async Task The_demo_uses_real_firecracker_when_it_is_configured()
    {
        var real = RealFirecracker.RequireGuest();
        _root.Environment["KILN_FIRECRACKER"] = real.Firecracker;
        foreach (var name in new[] { "KILN_TEST_KERNEL", "KILN_TEST_INITRD", "KILN_TEST_ROOTFS", "KILN_TEST_KERNEL_ARGS" })
            _root.Environment[name] = Environment.GetEnvironmentVariable(name);

        var demo = await _root.RunAsync("demo", "--json");

        Assert.True(demo.ExitCode == 0, demo.ToString());
        Assert.Equal("firecracker", demo.Json().GetProperty("hypervisor").GetString());
        Assert.True(demo.Json().GetProperty("succeeded").GetBoolean());
    }
}
