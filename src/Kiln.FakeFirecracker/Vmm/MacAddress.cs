using System.Globalization;

namespace Kiln.FakeFirecracker.Vmm;

internal static class MacAddress
{
    /// <summary>Parses `06:00:AC:10:00:02`; <paramref name="canonical"/> is the lower-case form Firecracker prints.</summary>
    public static bool TryParse(string text, out string canonical)
    {
        canonical = "";
        var parts = text.Split(':');
        if (parts.Length != 6 || parts.Any(p => p.Length != 2 || !byte.TryParse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out _)))
        {
            return false;
        }

        canonical = text.ToLowerInvariant();
        return true;
    }
}
