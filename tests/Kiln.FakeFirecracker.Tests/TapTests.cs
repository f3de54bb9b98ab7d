// The stand-in opens TAPs as Firecracker does (TUNSETIFF by name). These tests need root and use names of their own.
using System.Diagnostics;
using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class TapTests
{
    private static void RequireRoot() =>
        Assert.SkipUnless(Environment.UserName == "root", "opening TAP devices needs root (CAP_NET_ADMIN)");

    private static bool LinkExists(string name) => Directory.Exists("/sys/class/net/" + name);

    [Fact]
    public async Task Putting_an_interface_creates_a_missing_tap_that_vanishes_when_the_process_ends()
    {
        RequireRoot();
        using var dir = new TempDir();
        var tap = Fc.UniqueTap();
        await using var fc = await Fc.StartAsync(dir);

        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{tap}}"}""");
        var existed = LinkExists(tap);
        fc.Process.Signal(NativeMethods.SIGKILL);
        await fc.Process.WaitExitAsync(TimeSpan.FromSeconds(10), Fc.Ct);

        Assert.True(existed);
        Assert.False(LinkExists(tap));
    }

    [Fact]
    public async Task A_tap_another_process_holds_fails_with_firecrackers_busy_text()
    {
        RequireRoot();
        using var dir = new TempDir();
        var tap = Fc.UniqueTap();
        await using var holder = await Fc.StartAsync(dir, socket: "a.sock");
        await holder.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{tap}}"}""");
        await using var other = await Fc.StartAsync(dir, socket: "b.sock");

        var answer = await other.Put("/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{tap}}"}""");

        Assert.Equal(400, answer.Status);
        Assert.Equal(
            $"Network config error: Could not create the network device: Open tap device failed: Error while creating ifreq structure: Device or resource busy (os error 16). Invalid TUN/TAP Backend provided by {tap}. Check our documentation on setting up the network devices.",
            Fc.Fault(answer));
    }

    [Fact]
    public async Task A_persistent_tap_made_beforehand_is_attached_and_outlives_the_process()
    {
        RequireRoot();
        using var dir = new TempDir();
        var tap = Fc.UniqueTap();
        Ip("tuntap", "add", "dev", tap, "mode", "tap");
        try
        {
            await using (var fc = await Fc.StartAsync(dir))
            {
                await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{tap}}"}""");
            }

            Assert.True(LinkExists(tap));
        }
        finally
        {
            Ip("link", "del", "dev", tap);
        }
    }

    [Fact]
    public async Task Replacing_an_interface_releases_its_previous_tap()
    {
        RequireRoot();
        using var dir = new TempDir();
        var (first, second) = (Fc.UniqueTap(), Fc.UniqueTap());
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{first}}"}""");

        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{second}}"}""");

        Assert.False(LinkExists(first));
        Assert.True(LinkExists(second));
    }

    [Fact]
    public async Task A_replacement_that_fails_leaves_the_interface_gone_and_its_old_tap_released()
    {
        // vmm_config/net.rs NetBuilder::build drops the old device before creating the new one.
        RequireRoot();
        using var dir = new TempDir();
        var first = Fc.UniqueTap();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/network-interfaces/eth0", $$"""{"iface_id": "eth0", "host_dev_name": "{{first}}"}""");

        var answer = await fc.Put("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "a-name-over-15-bytes"}""");
        var config = JsonNode.Parse((await fc.Get("/vm/config")).Body)!;

        Assert.Equal(400, answer.Status);
        Assert.Equal("Network config error: Could not create the network device: Open tap device failed: Invalid interface name", Fc.Fault(answer));
        Assert.Empty(config["network-interfaces"]!.AsArray());
        Assert.False(LinkExists(first));
    }

    private static void Ip(params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"ip {string.Join(' ', args)}: {stderr}");
    }
}
