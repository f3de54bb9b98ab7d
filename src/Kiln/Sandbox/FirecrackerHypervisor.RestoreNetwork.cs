// The sandbox network of a restored sandbox (HypervisorConfig.Network with HypervisorConfig.Restore). Each clone gets
// a network of its own from SandboxNetworks exactly as a booted sandbox does (for isolated and nat: a namespace of its
// own with a TAP named tap0 in it), the VMM is spawned in that namespace, and the load's network_overrides points the
// snapshot's interface at the clone's TAP. The override is sent even when the names agree (tap0 in a namespace of
// Kiln's): the load then never depends on what TAP name the template's source happened to have (a --net TAP source
// recorded a host TAP that the clone must not open).
//
// What the override cannot change is the guest: a restored guest keeps the MAC of the snapshot's virtio-net device
// and the address it configured at boot (the kernel's ip= argument, in the snapshot's memory). So every clone of one
// template has the same MAC and address. That is sound because each is alone on its own L2 segment: the TAP in the
// clone's own namespace; with nat the namespace's veth link (a /30 per sandbox from the link pool) and the two
// masquerades make the guest's address invisible beyond the namespace. The clone's TAP is given the address the
// guest uses as its gateway, taken from the template's recorded boot arguments, and its network record the recorded
// MAC, so what kiln inspect shows is what the guest has. A spec that asks for another MAC or address is refused
// rather than ignored: the guest would not use it.
using Kiln.Api;
using Kiln.Host.Network;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>
    /// The network spec a clone of <paramref name="machine"/> (a template's recorded configuration) is set up with:
    /// the template's guest MAC and ip= address. For a snapshot (no recorded configuration) the spec as given.
    /// </summary>
    /// <exception cref="SandboxConfigurationException">The template has no single interface, or the spec asks for a MAC or address the guest does not have.</exception>
    private static SandboxNetworkSpec RestoredNetworkSpec(SandboxNetworkSpec spec, FullVmConfiguration? machine)
    {
        if (machine is null)
            return spec;
        const string Property = nameof(HypervisorConfig.Network);
        var interfaces = machine.NetworkInterfaces ?? [];
        if (interfaces.Count != 1)
        {
            throw new SandboxConfigurationException(Property,
                $"a sandbox network replaces the template's one network interface, and this template has {interfaces.Count}");
        }
        var recordedMac = interfaces[0].GuestMac;
        if (spec.GuestMac is { } mac && recordedMac is not null && !string.Equals(mac, recordedMac, StringComparison.OrdinalIgnoreCase))
        {
            throw new SandboxConfigurationException($"{Property}.{nameof(SandboxNetworkSpec.GuestMac)}",
                $"is {mac}, but a clone's guest keeps the template's MAC {recordedMac}: leave it null");
        }
        var result = spec with { GuestMac = recordedMac ?? spec.GuestMac };
        if (RecordedGuestAddress(machine.BootSource?.BootArgs) is { } recorded)
        {
            if (spec.GuestAddress != SandboxNetworkSpec.DefaultGuestAddress && spec.GuestAddress != recorded)
            {
                throw new SandboxConfigurationException($"{Property}.{nameof(SandboxNetworkSpec.GuestAddress)}",
                    $"is {spec.GuestAddress}, but a clone's guest keeps the template's address {recorded} (its boot's ip=): leave the default");
            }
            result = result with { GuestAddress = recorded };
        }
        return result;
    }

    /// <summary>The interface a sandbox network replaces: the template's one, or for a snapshot the sandbox network's id.</summary>
    private static string RestoredInterfaceId(FullVmConfiguration? machine) =>
        machine?.NetworkInterfaces is [var only] ? only.IfaceId : SandboxInterfaceId;

    /// <summary>
    /// The guest address of a kernel <c>ip=GUEST::GATEWAY:NETMASK::…</c> argument (the form
    /// <c>SandboxNetworkInfo.KernelIpArgument</c> writes); null without one, or one of another form (DHCP, say).
    /// </summary>
    internal static InterfaceAddress? RecordedGuestAddress(string? bootArgs)
    {
        if (bootArgs is null)
            return null;
        foreach (var argument in bootArgs.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!argument.StartsWith("ip=", StringComparison.Ordinal))
                continue;
            var fields = argument[3..].Split(':');
            if (fields.Length < 4
                || !System.Net.IPAddress.TryParse(fields[0], out var guest)
                || !System.Net.IPAddress.TryParse(fields[3], out var netmask)
                || guest.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                return null;
            }
            var mask = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(netmask.GetAddressBytes());
            var prefix = System.Numerics.BitOperations.PopCount(mask);
            // A netmask is contiguous ones: anything else is not one Kiln wrote.
            if (prefix != 0 && mask != uint.MaxValue << (32 - prefix))
                return null;
            return new InterfaceAddress(guest, prefix);
        }
        return null;
    }
}
