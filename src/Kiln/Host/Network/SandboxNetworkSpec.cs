using System.Text.Json.Serialization;

namespace Kiln.Host.Network;

/// <summary>How a sandbox is networked (<c>kiln run --network MODE</c>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NetworkMode>))]
public enum NetworkMode
{
    /// <summary>No network device.</summary>
    None,

    /// <summary>A TAP in a fresh network namespace Kiln creates; no route out (egress off).</summary>
    Isolated,

    /// <summary>As <see cref="Isolated"/>, plus a veth pair to the host and NAT (nftables rules in Kiln's table) for egress.</summary>
    Nat,

    /// <summary>A TAP in a network namespace the user gives (<see cref="SandboxNetworkSpec.NamespacePath"/>); its plumbing is the user's.</summary>
    Namespace,
}

/// <summary>The network a sandbox asks for. Validated before anything on the host changes.</summary>
public sealed record SandboxNetworkSpec
{
    /// <summary>The default guest address: Firecracker's documented example link, the same in every namespace.</summary>
    public static InterfaceAddress DefaultGuestAddress { get; } = InterfaceAddress.Parse("172.16.0.2/30", nameof(GuestAddress));

    /// <summary>The mode.</summary>
    public NetworkMode Mode { get; init; } = NetworkMode.Isolated;

    /// <summary>For <see cref="NetworkMode.Namespace"/>: the namespace (e.g. <c>/run/netns/mine</c> or <c>/proc/PID/ns/net</c>).</summary>
    public string? NamespacePath { get; init; }

    /// <summary>The guest's address (<c>--ip ADDR/PREFIX</c>); the TAP gets another address on the same network.</summary>
    public InterfaceAddress GuestAddress { get; init; } = DefaultGuestAddress;

    /// <summary>The guest MAC; null: derived from the sandbox id (<see cref="GuestMac.ForSandbox"/>).</summary>
    public string? GuestMac { get; init; }

    /// <summary>The TAP's name; null: <c>tap0</c> in a namespace of Kiln's, a name derived from the sandbox id in the user's.</summary>
    public string? TapName { get; init; }

    /// <summary>The TAP's address: the network's first host address, or its second when the guest has the first.</summary>
    public InterfaceAddress TapAddress => GuestAddress.FirstHost.Address.Equals(GuestAddress.Address) ? GuestAddress.FirstHost.Plus(1) : GuestAddress.FirstHost;

    /// <summary>Throws naming the first bad property.</summary>
    /// <exception cref="NetworkConfigurationException">A bad value.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Mode))
            throw new NetworkConfigurationException(nameof(Mode), $"{(int)Mode} is not a network mode");
        if (Mode == NetworkMode.Namespace)
        {
            if (string.IsNullOrEmpty(NamespacePath) || !Path.IsPathFullyQualified(NamespacePath) || NamespacePath.Contains('\0', StringComparison.Ordinal))
                throw new NetworkConfigurationException(nameof(NamespacePath), $"'{NamespacePath}' is not an absolute path to a network namespace");
        }
        else if (NamespacePath is not null)
        {
            throw new NetworkConfigurationException(nameof(NamespacePath), $"only for mode {NetworkMode.Namespace}, not {Mode}");
        }
        ArgumentNullException.ThrowIfNull(GuestAddress, nameof(GuestAddress));
        if (!GuestAddress.IsHostAddress)
            throw new NetworkConfigurationException(nameof(GuestAddress), $"{GuestAddress} is the network's own or broadcast address");
        if (GuestMac is not null && !Network.GuestMac.IsValid(GuestMac))
            throw new NetworkConfigurationException(nameof(GuestMac), $"'{GuestMac}' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)");
        if (TapName is not null)
            InterfaceName.Validate(TapName, nameof(TapName));
    }
}

/// <summary>What Kiln set up for a sandbox's network: what <c>kiln inspect</c> shows and what clean-up removes.</summary>
public sealed record SandboxNetworkInfo
{
    /// <summary>The sandbox.</summary>
    public required string SandboxId { get; init; }

    /// <summary>The mode.</summary>
    public required NetworkMode Mode { get; init; }

    /// <summary>The namespace Firecracker runs in (null: Kiln's own).</summary>
    public string? NamespacePath { get; init; }

    /// <summary>Whether Kiln created the namespace (and so deletes it).</summary>
    public bool NamespaceCreatedByKiln { get; init; }

    /// <summary>The TAP inside the namespace.</summary>
    public string? TapName { get; init; }

    /// <summary>The TAP's (host side of the guest link) address.</summary>
    public InterfaceAddress? TapAddress { get; init; }

    /// <summary>The guest's address.</summary>
    public InterfaceAddress? GuestAddress { get; init; }

    /// <summary>The guest's MAC.</summary>
    public string? GuestMac { get; init; }

    /// <summary>NAT: the veth end in the host namespace.</summary>
    public string? HostVeth { get; init; }

    /// <summary>NAT: its address.</summary>
    public InterfaceAddress? HostVethAddress { get; init; }

    /// <summary>NAT: the veth end in the sandbox namespace.</summary>
    public string? NamespaceVeth { get; init; }

    /// <summary>NAT: its address.</summary>
    public InterfaceAddress? NamespaceVethAddress { get; init; }

    /// <summary>NAT: the nftables chains in Kiln's table of the host namespace.</summary>
    public IReadOnlyList<string> NftChains { get; init; } = [];

    /// <summary>The process whose death makes this network garbage (Kiln during start, then the VMM).</summary>
    public int OwnerPid { get; init; }

    /// <summary>Its start time (<see cref="ProcessIdentity.StartTimeTicks"/>), so a reused PID is not mistaken for it.</summary>
    public ulong OwnerStartTime { get; init; }

    /// <summary>
    /// The kernel's <c>ip=</c> argument that configures the guest's first interface statically:
    /// <c>ip=GUEST::GATEWAY:NETMASK::eth0:off</c>.
    /// </summary>
    [JsonIgnore]
    public string? KernelIpArgument => GuestAddress is { } guest && TapAddress is { } tap
        ? $"ip={guest.Address}::{tap.Address}:{guest.Netmask}::eth0:off"
        : null;
}
