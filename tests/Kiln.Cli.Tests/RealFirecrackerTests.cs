// The same commands against real Firecracker and KVM, when the machine has them (the driver's env vars).
namespace Kiln.Cli.Tests;

public sealed class RealFirecrackerTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private sealed record RealSetup(string Firecracker, string Kernel, string? Initrd, string? Rootfs, string? KernelArgs);

    private static RealSetup RequireReal()
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        var firecracker = Env("KILN_FIRECRACKER");
        var kernel = Env("KILN_TEST_KERNEL");
        if (firecracker is null || !File.Exists(firecracker))
            Assert.Skip("real Firecracker not configured: set KILN_FIRECRACKER to a firecracker binary");
        if (!File.Exists("/dev/kvm"))
            Assert.Skip("/dev/kvm is missing");
        if (kernel is null || !File.Exists(kernel))
            Assert.Skip("no guest kernel: set KILN_TEST_KERNEL (and KILN_TEST_INITRD or KILN_TEST_ROOTFS)");
        return new RealSetup(firecracker, kernel, Env("KILN_TEST_INITRD"), Env("KILN_TEST_ROOTFS"), Env("KILN_TEST_KERNEL_ARGS"));
    }

    [Fact]
    public async Task A_real_vm_runs_detached_hot_plugs_shows_its_vcpu_threads_and_stops()
    {
        var real = RequireReal();
        _root.Environment["KILN_FIRECRACKER"] = real.Firecracker;
        List<string> args = ["run", "--detach", "--name", "real", "--kernel", real.Kernel, "--vcpus", "2", "--memory", "256"];
        if (real.Initrd is not null)
            args.AddRange(["--initrd", real.Initrd]);
        if (real.Rootfs is not null)
            args.AddRange(["--rootfs", real.Rootfs]);
        if (real.KernelArgs is not null)
            args.AddRange(["--kernel-args", real.KernelArgs]);

        var run = await _root.RunAsync([.. args]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("Running", (await _root.PsAsync("real")).GetProperty("state").GetString());

        var threads = await _root.RunAsync("threads", "real", "--json");
        Assert.True(threads.ExitCode == 0, threads.ToString());
        Assert.Equal(2, threads.Json().GetProperty("vcpus").GetArrayLength());

        var disk = _root.CreateFile("data.img", 1024 * 1024);
        var add = await _root.RunAsync("drive", "add", "real", disk, "--json");
        Assert.True(add.ExitCode == 0, add.ToString());

        var inspect = await _root.RunAsync("inspect", "real", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal(2, inspect.Json().GetProperty("vmConfig").GetProperty("machine-config").GetProperty("vcpu_count").GetInt32());

        var rm = await _root.RunAsync("rm", "real", "--force");
        Assert.True(rm.ExitCode == 0, rm.ToString());
    }

    [Fact]
    public async Task The_demo_uses_real_firecracker_when_it_is_configured()
    {
        var real = RequireReal();
        _root.Environment["KILN_FIRECRACKER"] = real.Firecracker;
        _root.Environment["KILN_TEST_KERNEL"] = real.Kernel;
        foreach (var name in new[] { "KILN_TEST_INITRD", "KILN_TEST_ROOTFS", "KILN_TEST_KERNEL_ARGS" })
            _root.Environment[name] = Environment.GetEnvironmentVariable(name);

        var demo = await _root.RunAsync("demo", "--json");

        Assert.True(demo.ExitCode == 0, demo.ToString());
        Assert.Equal("firecracker", demo.Json().GetProperty("hypervisor").GetString());
    }
}
