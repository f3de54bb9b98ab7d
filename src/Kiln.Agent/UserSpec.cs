// Who a command runs as: "NAME", "UID", "NAME:GID" or "UID:GID". Names come from the guest's /etc/passwd (read
// directly: a minimal image has no NSS modules), and a user's primary group is the default group.
using System.Globalization;

namespace Kiln.GuestAgent;

internal sealed record UserSpec(uint Uid, uint Gid, string Home)
{
    /// <summary>Resolves <paramref name="text"/>, or throws <see cref="ArgumentException"/> naming what is unknown.</summary>
    public static UserSpec Resolve(string text, string passwdPath = "/etc/passwd")
    {
        var parts = text.Split(':', 2);
        var entries = File.Exists(passwdPath) ? File.ReadAllLines(passwdPath) : [];
        string[]? entry = null;
        foreach (var line in entries)
        {
            var fields = line.Split(':');
            if (fields.Length >= 7 && (fields[0] == parts[0] || fields[2] == parts[0]))
            {
                entry = fields;
                break;
            }
        }

        uint uid;
        if (entry is not null)
            uid = uint.Parse(entry[2], CultureInfo.InvariantCulture);
        else if (!uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out uid))
            throw new ArgumentException($"Unknown user '{parts[0]}'.");

        uint gid;
        if (parts.Length == 2)
        {
            if (!uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out gid))
                throw new ArgumentException($"The group '{parts[1]}' is not a number.");
        }
        else
        {
            gid = entry is not null ? uint.Parse(entry[3], CultureInfo.InvariantCulture) : uid;
        }

        return new UserSpec(uid, gid, entry?[5] is { Length: > 0 } home ? home : "/");
    }
}
