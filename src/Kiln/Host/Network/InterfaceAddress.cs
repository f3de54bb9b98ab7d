using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Kiln.Host.Network;

/// <summary>An IPv4 address on an interface with its prefix length: <c>172.16.0.1/30</c>.</summary>
/// <param name="Address">The interface's own address (host bits set, unlike a network).</param>
/// <param name="PrefixLength">0–32.</param>
public sealed record InterfaceAddress(IPAddress Address, int PrefixLength)
{
    /// <summary>Parses <c>ADDR/PREFIX</c> (IPv4; the prefix 1–30 so that a peer address exists).</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out InterfaceAddress? value)
    {
        value = null;
        if (text?.Split('/') is not [var address, var prefix]
            || !IPAddress.TryParse(address, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
            || address.Count(c => c == '.') != 3
            || !int.TryParse(prefix, NumberStyles.None, CultureInfo.InvariantCulture, out var length) || length is < 1 or > 30)
            return false;
        value = new InterfaceAddress(ip, length);
        return true;
    }

    /// <summary>Parses <c>ADDR/PREFIX</c>.</summary>
    /// <exception cref="NetworkConfigurationException">Not an IPv4 address with a prefix of 1–30, naming <paramref name="propertyName"/>.</exception>
    public static InterfaceAddress Parse(string text, string propertyName) =>
        TryParse(text, out var value) ? value
            : throw new NetworkConfigurationException(propertyName, $"'{text}' is not an IPv4 ADDR/PREFIX with a prefix of 1-30");

    /// <summary>The network's mask, e.g. 255.255.255.252 for /30.</summary>
    public IPAddress Netmask
    {
        get
        {
            var bytes = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, Mask);
            return new IPAddress(bytes);
        }
    }

    /// <summary>The network this address is on, e.g. <c>172.16.0.0/30</c>.</summary>
    public string Network
    {
        get
        {
            var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(Address.GetAddressBytes()) & Mask;
            var bytes = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
            return string.Create(CultureInfo.InvariantCulture, $"{new IPAddress(bytes)}/{PrefixLength}");
        }
    }

    private uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    /// <summary>Whether <paramref name="other"/> is on the same network.</summary>
    public bool SameNetwork(IPAddress other)
    {
        var a = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(Address.GetAddressBytes());
        var b = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(other.GetAddressBytes());
        return (a & Mask) == (b & Mask);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Address}/{PrefixLength}");
}
