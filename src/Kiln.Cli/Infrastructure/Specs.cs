using System.Globalization;
using System.Text;
using Kiln.Sandbox;

namespace Kiln.Cli.Infrastructure;

/// <summary>Parsers for the compact option syntaxes of <c>kiln run</c>. Each throws <see cref="UsageException"/>.</summary>
internal static class Specs
{
    /// <summary>
    /// Splits a kernel command line into parameters: whitespace separates, double quotes group
    /// (<c>init="/bin/sh -c x"</c>), the first <c>=</c> splits key from value. Quotes are kept in the value because
    /// the kernel itself interprets them.
    /// </summary>
    public static IReadOnlyList<KernelParam> ParseKernelArgs(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return [];
        var tokens = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        foreach (var c in text)
        {
            if (c == '"')
                quoted = !quoted;
            if (!quoted && char.IsWhiteSpace(c))
            {
                if (current.Length > 0)
                {
                    tokens.Add(current.ToString());
                    current.Clear();
                }
                continue;
            }
            current.Append(c);
        }
        if (quoted)
            throw new UsageException($"--kernel-args: unbalanced double quote in \"{text}\".");
        if (current.Length > 0)
            tokens.Add(current.ToString());
        return [.. tokens.Select(ToParam)];
    }

    private static KernelParam ToParam(string token)
    {
        var equals = token.IndexOf('=', StringComparison.Ordinal);
        if (equals == 0)
            throw new UsageException($"--kernel-args: parameter \"{token}\" has no key.");
        return equals < 0 ? new KernelParam(token) : new KernelParam(token[..equals], token[(equals + 1)..]);
    }

    /// <summary>Parses <c>PATH[:ro|:rw]</c>; the file must exist.</summary>
    public static BlockDevice ParseDrive(string spec)
    {
        var path = spec;
        var readOnly = false;
        if (spec.EndsWith(":ro", StringComparison.Ordinal))
        {
            path = spec[..^3];
            readOnly = true;
        }
        else if (spec.EndsWith(":rw", StringComparison.Ordinal))
        {
            path = spec[..^3];
        }
        return new BlockDevice(RequireFile(path, "--drive")) { ReadOnly = readOnly };
    }

    /// <summary>Parses <c>TAP[,mac=xx:xx:xx:xx:xx:xx]</c>.</summary>
    public static NetworkDevice ParseNet(string spec)
    {
        var parts = spec.Split(',');
        var tap = parts[0];
        if (TapNameProblem(tap) is { } problem)
            throw new UsageException($"--net: \"{tap}\" is not a TAP device name: {problem}.");
        string? mac = null;
        foreach (var part in parts.Skip(1))
        {
            if (part.StartsWith("mac=", StringComparison.Ordinal) && IsMac(part[4..]))
                mac = part[4..].ToLowerInvariant();
            else
                throw new UsageException($"--net: unknown or malformed setting \"{part}\" (expected mac=xx:xx:xx:xx:xx:xx).");
        }
        return new NetworkDevice(tap) { MacAddress = mac };
    }

    /// <summary>The longest interface name Linux takes: IFNAMSIZ (16) less the terminating NUL.</summary>
    public const int MaxTapNameBytes = 15;

    /// <summary>
    /// Why Linux would refuse <paramref name="name"/> as a network interface name, or null when it takes it. The rules
    /// are the kernel's dev_valid_name (net/core/dev.c): not empty, under IFNAMSIZ bytes, not "." or "..", and no '/',
    /// ':' or byte its isspace() calls a space (which, in the kernel's Latin-1 ctype table, includes 0xA0). A '%' is
    /// refused too: TUNSETIFF treats it as a pattern and creates a new, differently named device.
    /// </summary>
    public static string? TapNameProblem(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length == 0)
            return "it is empty";
        if (bytes.Length > MaxTapNameBytes)
            return $"{bytes.Length} bytes, at most {MaxTapNameBytes} allowed";
        if (name is "." or "..")
            return "'.' and '..' are not interface names";
        foreach (var b in bytes)
        {
            if (b is (byte)'/' or (byte)':' or (byte)'%')
                return $"'{(char)b}' is not allowed";
            if (b is (byte)' ' or (byte)'\t' or (byte)'\n' or 0x0B or 0x0C or (byte)'\r' or 0xA0)
                return "white space is not allowed";
        }
        return null;
    }

    private static bool IsMac(string text)
    {
        var octets = text.Split(':');
        return octets.Length == 6 && octets.All(o =>
            o.Length == 2 && byte.TryParse(o, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _));
    }

    /// <summary>The absolute path of a file that must exist.</summary>
    /// <summary>
    /// <c>--network isolated|nat|netns:PATH|none</c> and <c>--ip ADDR/PREFIX</c> as a sandbox network (null: none).
    /// </summary>
    public static Kiln.Host.Network.SandboxNetworkSpec? ParseNetwork(string? mode, string? ip)
    {
        if (mode is null or "none")
        {
            if (ip is not null)
                throw new UsageException("--ip needs --network isolated, nat or netns:PATH.");
            return null;
        }
        var spec = mode switch
        {
            "isolated" => new Kiln.Host.Network.SandboxNetworkSpec { Mode = Kiln.Host.Network.NetworkMode.Isolated },
            "nat" => new Kiln.Host.Network.SandboxNetworkSpec { Mode = Kiln.Host.Network.NetworkMode.Nat },
            _ when mode.StartsWith("netns:", StringComparison.Ordinal) => new Kiln.Host.Network.SandboxNetworkSpec
            {
                Mode = Kiln.Host.Network.NetworkMode.Namespace,
                NamespacePath = NamespacePath(mode["netns:".Length..]),
            },
            _ => throw new UsageException($"--network: \"{mode}\" is not isolated, nat, netns:PATH or none."),
        };
        if (ip is not null)
        {
            if (!Kiln.Host.Network.InterfaceAddress.TryParse(ip, out var address) || !address.IsHostAddress)
                throw new UsageException($"--ip: \"{ip}\" is not an IPv4 ADDR/PREFIX (prefix 1-30, not the network's own or broadcast address).");
            spec = spec with { GuestAddress = address };
        }
        return spec;
    }

    private static string NamespacePath(string path)
    {
        if (path.Length == 0)
            throw new UsageException("--network netns:PATH: empty path.");
        // A bare name means one made with `ip netns add NAME`.
        var full = path.Contains('/', StringComparison.Ordinal) ? FullPath(path, "--network netns:PATH") : Path.Combine("/run/netns", path);
        return File.Exists(full) ? full : throw new UsageException($"--network netns:PATH: {full} does not exist.");
    }

    /// <summary><c>--metadata file.json</c>: the MMDS document, a JSON object.</summary>
    public static System.Text.Json.Nodes.JsonObject ParseMetadata(string path)
    {
        var full = RequireFile(path, "--metadata");
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(full)) as System.Text.Json.Nodes.JsonObject
                ?? throw new UsageException($"--metadata: {full} does not hold a JSON object.");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new UsageException($"--metadata: {full} is not valid JSON: {e.Message}");
        }
    }

    /// <summary>
    /// The absolute form of a path given as an option value. A NUL cannot be in a path (Path.GetFullPath throws
    /// ArgumentException); argv cannot carry one, but a value from anywhere else may (found by CliParserPropertyTests).
    /// </summary>
    private static string FullPath(string path, string what) =>
        path.Contains('\0', StringComparison.Ordinal)
            ? throw new UsageException($"{what}: a path cannot hold a NUL character.")
            : Path.GetFullPath(path);

    public static string RequireFile(string path, string what)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new UsageException($"{what}: empty path.");
        var full = FullPath(path, what);
        if (Directory.Exists(full))
            throw new UsageException($"{what}: {full} is a directory, not a file.");
        return File.Exists(full) ? full : throw new UsageException($"{what}: file not found: {full}");
    }
}
