using System.Security.Cryptography;
using System.Text;

namespace Kiln.Host.Network;

/// <summary>The guest MAC Kiln gives a sandbox that names none: stable for its id, never a clash in practice.</summary>
public static class GuestMac
{
    /// <summary>
    /// <c>06:</c> then the first five bytes of SHA-256 of the id: 0x06 is a locally administered unicast first octet
    /// (the same Firecracker's examples use), so the address never collides with a vendor's.
    /// </summary>
    public static string ForSandbox(string sandboxId)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxId);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(sandboxId));
        return "06:" + string.Join(':', hash.Take(5).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>Whether <paramref name="mac"/> is six colon-separated hex bytes, unicast.</summary>
    public static bool IsValid(string? mac) =>
        mac?.Split(':') is { Length: 6 } parts
        && parts.All(p => p.Length == 2 && p.All(char.IsAsciiHexDigit))
        && (Convert.ToByte(parts[0], 16) & 1) == 0;
}
