using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Kiln.Host.Network;

/// <summary>An IPv4 address on an interface with its prefix length: <c>172.16.0.1/30</c>. JSON: that string.</summary>
/// <param name="Address">The interface's own address (host bits set, unlike a network).</param>
/// <param name="PrefixLength">0–32.</param>
[System.Text.Json.Serialization.JsonConverter(typeof(InterfaceAddressJsonConverter))]
public sealed record InterfaceAddress(IPAddress Address, int PrefixLength)
{
    /// <summary>The address <paramref name="offset"/> after this one, same prefix (e.g. the peer in a /30).</summary>
    public InterfaceAddress Plus(int offset)
    {
        var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(Address.GetAddressBytes()) + (uint)offset;
        var bytes = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return this with { Address = new IPAddress(bytes) };
    }

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

    /// <summary>The network's first host address (network + 1), same prefix.</summary>
    public InterfaceAddress FirstHost => this with { Address = FromValue((Value & Mask) + 1) };

    /// <summary>Whether this is neither the network's own address nor its broadcast address.</summary>
    public bool IsHostAddress => (Value & ~Mask) != 0 && (Value & ~Mask) != ~Mask;

    private uint Value => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(Address.GetAddressBytes());

    private static IPAddress FromValue(uint value)
    {
        var bytes = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
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

/// <summary>Reads and writes <see cref="InterfaceAddress"/> as <c>"ADDR/PREFIX"</c>.</summary>
public sealed class InterfaceAddressJsonConverter : System.Text.Json.Serialization.JsonConverter<InterfaceAddress>
{
    /// <inheritdoc/>
    public override InterfaceAddress? Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        InterfaceAddress.TryParse(reader.GetString(), out var value) ? value : throw new System.Text.Json.JsonException("not an ADDR/PREFIX");

    /// <inheritdoc/>
    public override void Write(System.Text.Json.Utf8JsonWriter writer, InterfaceAddress value, System.Text.Json.JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        writer.WriteStringValue(value.ToString());
    }
}
