// The guest kernel command line: Firecracker-appropriate defaults merged with the configured parameters, serialised
// so a parameter can never smuggle in another one (or the `--` that hands the rest to init).
using System.Text;

namespace Kiln.Vm;

/// <summary>Builds guest kernel command lines.</summary>
public static class KernelCommandLine
{
    /// <summary>
    /// The defaults for a Firecracker guest: serial console on ttyS0, reboot=k + panic=1 so a guest reboot or panic
    /// ends the VMM (Firecracker has no reset), no PCI probing (the devices are virtio-mmio), and the i8042 flags that
    /// skip probing absent keyboard/aux ports (boot time). Not the seed's <c>acpi=off</c>: x86 guests have ACPI since
    /// Firecracker 1.8.
    /// </summary>
    public static IReadOnlyList<(string Key, string? Value)> Defaults { get; } =
    [
        ("console", "ttyS0"),
        ("reboot", "k"),
        ("panic", "1"),
        ("pci", "off"),
        ("i8042.noaux", null),
        ("i8042.nomux", null),
        ("i8042.dumbkbd", null),
    ];

    /// <summary>
    /// Merges defaults, the root parameters and the configured ones: a configured key replaces every earlier
    /// parameter with that key (in the first one's place); configured parameters keep their order.
    /// </summary>
    /// <param name="configured">The configured parameters.</param>
    /// <param name="rootDevice">The root device (<c>root=</c>), or null for an initrd-only guest.</param>
    public static IReadOnlyList<(string Key, string? Value)> Merge(
        IEnumerable<(string Key, string? Value)> configured, string? rootDevice)
    {
        ArgumentNullException.ThrowIfNull(configured);
        var merged = new List<(string Key, string? Value)>(Defaults);
        if (rootDevice is not null)
            merged.Add(("root", rootDevice));
        var replaced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var param in configured)
        {
            Validate(param.Key, param.Value);
            var key = param.Key;
            if (replaced.Add(key))
            {
                var at = merged.FindIndex(p => p.Key == key);
                merged.RemoveAll(p => p.Key == key);
                merged.Insert(at < 0 ? merged.Count : at, param);
            }
            else
            {
                merged.Add(param);
            }
        }
        return merged;
    }

    /// <summary>Serialises validated parameters with single spaces.</summary>
    public static string Serialize(IEnumerable<(string Key, string? Value)> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var sb = new StringBuilder();
        foreach (var (key, value) in parameters)
        {
            Validate(key, value);
            if (sb.Length > 0)
                sb.Append(' ');
            sb.Append(key);
            if (value is not null)
                sb.Append('=').Append(value);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Refuses what would change the command line's structure: an empty key, whitespace, quotes, control characters,
    /// '=' in a key, or a key starting with '-' (<c>--</c> ends the kernel's parameters and passes the rest to init).
    /// </summary>
    /// <exception cref="ArgumentException">The parameter is unsafe; the message says why.</exception>
    public static void Validate(string key, string? value)
    {
        if (string.IsNullOrEmpty(key))
            throw new ArgumentException("a kernel parameter needs a key", nameof(key));
        if (key[0] == '-')
            throw new ArgumentException($"kernel parameter '{key}' starts with '-': '--' would pass the rest of the command line to init", nameof(key));
        if (key.Contains('='))
            throw new ArgumentException($"kernel parameter key '{key}' contains '='", nameof(key));
        CheckChars(key, "key", nameof(key));
        if (value is not null)
            CheckChars(value, $"value of '{key}'", nameof(value));
    }

    private static void CheckChars(string text, string what, string paramName)
    {
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c) || c is '"' or '\'' or '\\')
                throw new ArgumentException($"kernel parameter {what} '{text}' contains whitespace, a quote, a backslash or a control character", paramName);
        }
    }
}
