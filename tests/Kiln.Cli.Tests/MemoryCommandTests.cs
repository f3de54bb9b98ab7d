// `kiln mem` and `kiln stats`, each its own kiln process re-attaching to a detached VM: against the stand-in always,
// and against real Firecracker with the VM tier's guest when the machine has one (skipped with the reason otherwise).
using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

public sealed class MemoryCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    public static TheoryData<string> Targets => ["stand-in", "real"];

    private string[] RunArgs(string target, string name, out Regex ready, out TimeSpan bootTimeout, params string[] extra)
    {
        List<string> args = ["run", "--detach", "--name", name, "--vcpus", "1", "--memory", "256", .. extra];
        if (target == "stand-in")
        {
            // The stand-in's guest activates its balloon a while after boot, as a real kernel's driver does.
            _root.Environment["FAKE_FC_BALLOON_ACTIVATION_MS"] = "300";
            args.AddRange(["--kernel", _root.Kernel, "--rootfs", _root.Rootfs]);
            ready = new Regex(RealFirecracker.DefaultReadyPattern);
            bootTimeout = TimeSpan.FromSeconds(60);
            return [.. args];
        }
        var real = RealFirecracker.RequireGuest();
        _root.Environment["KILN_FIRECRACKER"] = real.Firecracker;
        args.AddRange(["--kernel", real.Kernel]);
        if (real.Initrd is not null)
            args.AddRange(["--initrd", real.Initrd]);
        if (real.Rootfs is not null)
            args.AddRange(["--rootfs", real.Rootfs]);
        if (real.KernelArgs.Length > 0)
            args.AddRange(["--kernel-args", real.KernelArgs]);
        ready = real.ReadyPattern;
        bootTimeout = real.BootTimeout;
        return [.. args];
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task Mem_shrinks_a_ballooned_guest_stats_shows_the_inflated_balloon_and_firecrackers_metrics_and_mem_gives_it_back(string target)
    {
        var run = await _root.RunAsync(RunArgs(target, "vm", out var ready, out var bootTimeout, "--balloon", "--metrics"));
        Assert.True(run.ExitCode == 0, run.ToString());
        await using (var console = _root.Start("logs", "vm", "--follow"))
            await console.WaitForOutputAsync(ready, bootTimeout);

        var shrink = await _root.RunAsync("mem", "vm", "224M", "--json");

        Assert.True(shrink.ExitCode == 0, shrink.ToString());
        var json = shrink.Json();
        Assert.Equal(224, json.GetProperty("requestedMiB").GetInt32());
        Assert.Equal("balloon", json.GetProperty("mechanism").GetString());
        Assert.Equal(224, json.GetProperty("memory").GetProperty("guestMiB").GetInt32());
        Assert.Equal(32, json.GetProperty("memory").GetProperty("balloonActualMiB").GetInt32());
        Assert.True(json.GetProperty("memory").GetProperty("settled").GetBoolean());

        var stats = await _root.RunAsync("stats", "vm", "--json");

        Assert.True(stats.ExitCode == 0, stats.ToString());
        var s = stats.Json();
        Assert.Equal(32, s.GetProperty("balloon").GetProperty("actual_mib").GetInt32());
        Assert.Equal(32, s.GetProperty("balloon").GetProperty("target_mib").GetInt32());
        Assert.True(s.GetProperty("metricsTimestampMs").GetInt64() > 0);
        // Counted since Firecracker's previous line, which was written before the balloon moved.
        Assert.True(s.GetProperty("metrics").GetProperty("balloon.inflate_count").GetInt64() >= 1, stats.Stdout);
        Assert.True(s.GetProperty("metrics").GetProperty("put_api_requests.actions_count").GetInt64() >= 1, stats.Stdout);

        var text = await _root.RunAsync("stats", "vm");

        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("vm: 224 MiB (boot 256 MiB, balloon 32 of 32 MiB)", text.Stdout);
        Assert.Contains("actual_mib", text.Stdout);

        var back = await _root.RunAsync("mem", "vm", "256");

        Assert.True(back.ExitCode == 0, back.ToString());
        Assert.Contains("vm: 256 MiB (boot 256 MiB, balloon 0 of 0 MiB) (through balloon)", back.Stdout);
    }

    [Fact]
    public async Task Mem_grows_a_guest_with_a_hotplug_region_through_virtio_mem()
    {
        var run = await _root.RunAsync(RunArgs("stand-in", "hp", out _, out _, "--memory-hotplug", "256"));
        Assert.True(run.ExitCode == 0, run.ToString());

        var grow = await _root.RunAsync("mem", "hp", "1G", "--json");

        Assert.Equal(1, grow.ExitCode);
        Assert.Contains("holds 256 MiB", grow.Stderr);

        grow = await _root.RunAsync("mem", "hp", "384", "--json");

        Assert.True(grow.ExitCode == 0, grow.ToString());
        Assert.Equal("virtio-mem", grow.Json().GetProperty("mechanism").GetString());
        Assert.Equal(128, grow.Json().GetProperty("memory").GetProperty("pluggedMiB").GetInt32());
        Assert.Equal(384, grow.Json().GetProperty("memory").GetProperty("guestMiB").GetInt32());
        Assert.Equal(384, (await _root.PsAsync("hp")).GetProperty("memoryMiB").GetInt32()); // what the guest has now, not its boot memory
    }

    [Fact]
    public async Task Mem_on_a_guest_with_neither_device_fails_saying_so()
    {
        await _root.RunDetachedAsync("plain");

        var mem = await _root.RunAsync("mem", "plain", "64");

        Assert.Equal(1, mem.ExitCode);
        Assert.Contains("no balloon", mem.Stderr);
    }

    [Theory]
    [InlineData("lots")]
    [InlineData("0")]
    [InlineData("12T")]
    public async Task Mem_refuses_a_size_it_cannot_read_as_a_usage_error(string size)
    {
        await _root.RunDetachedAsync("sz");

        var mem = await _root.RunAsync("mem", "sz", size);

        Assert.Equal(2, mem.ExitCode);
        Assert.Contains($"size '{size}'", mem.Stderr);
    }

    [Fact]
    public async Task Stats_of_a_guest_without_balloon_or_metrics_says_what_is_off()
    {
        await _root.RunDetachedAsync("bare");

        var stats = await _root.RunAsync("stats", "bare", "--json");

        Assert.True(stats.ExitCode == 0, stats.ToString());
        var s = stats.Json();
        Assert.Equal(128, s.GetProperty("memory").GetProperty("guestMiB").GetInt32());
        Assert.Equal("no balloon (kiln run --balloon)", s.GetProperty("balloonNote").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, s.GetProperty("metrics").ValueKind);
    }

    [Fact]
    public async Task Mem_and_stats_of_a_stopped_vm_fail_naming_its_state()
    {
        await _root.RunDetachedAsync("gone");
        var stop = await _root.RunAsync("stop", "gone");
        Assert.True(stop.ExitCode == 0, stop.ToString());

        var mem = await _root.RunAsync("mem", "gone", "64");
        var stats = await _root.RunAsync("stats", "gone");

        Assert.Equal(1, mem.ExitCode);
        Assert.Contains("it is Stopped", mem.Stderr);
        Assert.Equal(1, stats.ExitCode);
        Assert.Contains("it is Stopped", stats.Stderr);
    }
}
