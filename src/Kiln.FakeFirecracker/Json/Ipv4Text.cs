using System.Globalization;

namespace Kiln.FakeFirecracker.Json;

/// <summary>Rust's <c>Ipv4Addr::from_str</c>: exactly four decimal octets, each at most 255, no leading zeros.</summary>
internal static class Ipv4Text
{
    public static bool TryParse(string text, out byte[] octets)
    {
        octets = new byte[4];
        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        for (var i = 0; i < 4; i++)
        {
            var p = parts[i];
            if (p.Length is 0 or > 3 || !p.All(char.IsAsciiDigit) || (p.Length > 1 && p[0] == '0')
                || !byte.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out octets[i]))
            {
                return false;
            }
        }

        return true;
    }
}
