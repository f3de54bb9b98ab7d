using System.Text;

namespace Kiln.Host.Network;

/// <summary>
/// The rule for Linux network interface names Kiln accepts: 1–15 bytes (IFNAMSIZ is 16 with the NUL), letters,
/// digits, <c>_</c>, <c>.</c> and <c>-</c>, not <c>.</c> or <c>..</c>, not starting with <c>-</c> (they become
/// arguments of <c>ip</c>).
/// </summary>
public static class InterfaceName
{
    /// <summary>The longest name in bytes.</summary>
    public const int MaxLength = 15;

    /// <summary>Why <paramref name="name"/> cannot be an interface name, or null when it can.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrEmpty(name))
            return "is empty";
        if (Encoding.UTF8.GetByteCount(name) > MaxLength)
            return $"'{name}' is longer than {MaxLength} bytes (Linux's IFNAMSIZ)";
        if (name is "." or ".." || name[0] == '-')
            return $"'{name}' is not a usable interface name";
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
                return $"'{name}' has '{c}'; use letters, digits, '_', '.' and '-'";
        }
        return null;
    }

    /// <summary>Throws naming <paramref name="propertyName"/> when <paramref name="name"/> is not a valid interface name.</summary>
    /// <exception cref="NetworkConfigurationException">The name is refused.</exception>
    public static void Validate(string? name, string propertyName)
    {
        if (Problem(name) is { } problem)
            throw new NetworkConfigurationException(propertyName, problem);
    }
}
