// Which TAPs Kiln created, and for which sandbox: one record file per TAP in a state directory, claimed with
// O_CREAT|O_EXCL so two sandboxes can never both own a name. Kiln removes a device only when its record names the
// caller; a TAP without a record (the user's, or one Firecracker created itself) is never touched.
using System.Security.Cryptography;
using System.Text;

namespace Kiln.Host.Network;

/// <summary>A TAP Kiln created: its name, its network namespace (null: Kiln's own) and the sandbox that owns it.</summary>
/// <param name="Name">The interface name.</param>
/// <param name="Owner">The owning sandbox's id.</param>
/// <param name="NetworkNamespacePath">The namespace it lives in (e.g. <c>/run/netns/kiln-web</c>); null for the namespace Kiln runs in.</param>
/// <param name="HostAddress">The address Kiln gave the host side, if any.</param>
public sealed record ProvisionedTap(string Name, string Owner, string? NetworkNamespacePath, InterfaceAddress? HostAddress);

internal sealed class TapOwnership(string directory)
{
    public string Directory { get; } = directory;

    public static void ValidateOwner(string owner)
    {
        if (string.IsNullOrWhiteSpace(owner) || owner.Any(char.IsControl))
            throw new NetworkConfigurationException("Owner", "must be a sandbox id without control characters");
    }

    /// <summary>Claims <paramref name="tap"/>; true when the caller already held it (a retry of the same sandbox).</summary>
    /// <exception cref="TapOwnedByAnotherSandboxException">Another sandbox holds the name in that namespace.</exception>
    public bool Claim(ProvisionedTap tap)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var path = PathOf(tap.Name, tap.NetworkNamespacePath);
        try
        {
            using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            file.Write(Encoding.UTF8.GetBytes(Serialize(tap)));
            return false;
        }
        catch (IOException) when (File.Exists(path))
        {
            var existing = Read(path);
            if (existing is null || existing.Owner != tap.Owner)
                throw new TapOwnedByAnotherSandboxException(tap.Name, existing?.Owner ?? "(unreadable record)");
            File.WriteAllText(path, Serialize(tap));
            return true;
        }
    }

    public ProvisionedTap? Find(string name, string? netns) => Read(PathOf(name, netns));

    public void Release(ProvisionedTap tap)
    {
        var path = PathOf(tap.Name, tap.NetworkNamespacePath);
        if (Read(path) is { } existing && existing.Owner == tap.Owner)
            File.Delete(path);
    }

    public IReadOnlyList<ProvisionedTap> All() =>
        !System.IO.Directory.Exists(Directory) ? []
            : [.. System.IO.Directory.EnumerateFiles(Directory, "tap-*").Select(Read).OfType<ProvisionedTap>()];

    // The namespace is part of the key: the same name in two namespaces is two devices.
    private string PathOf(string name, string? netns)
    {
        var scope = netns is null ? "host" : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(netns)))[..16];
        return Path.Combine(Directory, $"tap-{scope}-{name}");
    }

    private static string Serialize(ProvisionedTap tap) =>
        $"owner={tap.Owner}\nname={tap.Name}\nnetns={tap.NetworkNamespacePath ?? ""}\naddress={tap.HostAddress?.ToString() ?? ""}\n";

    private static ProvisionedTap? Read(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        var fields = lines.Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        if (!fields.TryGetValue("owner", out var owner) || !fields.TryGetValue("name", out var name))
            return null;
        var netns = fields.GetValueOrDefault("netns") is { Length: > 0 } n ? n : null;
        var address = InterfaceAddress.TryParse(fields.GetValueOrDefault("address"), out var a) ? a : null;
        return new ProvisionedTap(name, owner, netns, address);
    }
}
