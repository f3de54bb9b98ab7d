// What a recorded scenario needs from the machine to be replayed against real Firecracker. The stand-in needs
// nothing; real Firecracker runs everything before InstanceStart without KVM, but a boot (InstanceStart, a snapshot
// load, a config file) needs /dev/kvm and a real guest, and a TAP device needs root and /dev/net/tun.
using System.Text.Json.Nodes;
using Kiln.Testing;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed record ScenarioNeeds(bool Boots, bool BootsFromInitrd, bool OpensTap, bool TalksToGuestVsock)
{
    public static ScenarioNeeds Of(JsonObject scenario)
    {
        var text = scenario.ToJsonString();
        var results = scenario["results"]!.AsArray().Select(r => r!.AsObject()).ToList();
        var boots = results.Any(r => Request(r) is "PUT /actions" && r["step"]!["body"]?["action_type"]?.GetValue<string>() == "InstanceStart" && Status(r) == 204
                                  || Request(r) is "PUT /snapshot/load" && Status(r) == 204
                                  || r["body"] is JsonObject body && body["state"]?.GetValue<string>() is "Running" or "Paused");
        return new ScenarioNeeds(
            boots,
            BootsFromInitrd: text.Contains("\"initrd_path\":\"${INITRD}\"", StringComparison.Ordinal),
            OpensTap: results.Any(r => Request(r)?.StartsWith("PUT /network-interfaces/", StringComparison.Ordinal) == true && Status(r) == 204),
            TalksToGuestVsock: results.Any(r => r["vsock"]?["reply"]?.GetValue<string>().StartsWith("OK", StringComparison.Ordinal) == true));
    }

    private static string? Request(JsonObject result) => result["step"]?["req"]?.GetValue<string>();

    private static int? Status(JsonObject result) => result["status"]?.GetValue<int>();

    /// <summary>The guest a real replay needs (null when it needs none), or the reason it cannot run here.</summary>
    public RealGuest? GuestFor(string target, out string? skipReason)
    {
        skipReason = null;
        if (target != FirecrackerTarget.RealName)
        {
            return null;
        }

        if (RealFirecracker.Binary(out var noBinary) is null)
        {
            skipReason = noBinary;
            return null;
        }

        if (OpensTap && !(Environment.IsPrivilegedProcess && File.Exists("/dev/net/tun")))
        {
            skipReason = "it creates TAP devices: run as root with /dev/net/tun";
            return null;
        }

        if (!Boots)
        {
            return null;
        }

        var guest = RealFirecracker.Guest(out var reason);
        if (guest is null)
        {
            skipReason = $"it boots a guest: {reason}";
        }
        else if (BootsFromInitrd && guest.Initrd is null)
        {
            skipReason = "it was recorded booting an initramfs: set KILN_TEST_INITRD";
        }
        else if (!BootsFromInitrd && guest.Rootfs is null)
        {
            skipReason = "it was recorded booting an ext4 root device: set KILN_TEST_ROOTFS";
        }
        else if (TalksToGuestVsock && guest.VsockEchoPort is null)
        {
            skipReason = "it talks to an echo service in the guest over vsock: give the guest one (KILN_TEST_VSOCK_PORT)";
        }

        return skipReason is null ? guest : null;
    }
}
