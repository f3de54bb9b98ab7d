// What the jailer was asked to do, validated in the order src/jailer/src/env.rs Env::new checks it.
using System.Globalization;

namespace Kiln.FakeFirecracker.Jailer;

internal sealed record JailSettings(
    string Id,
    string ExecFilePath,
    string ExecFileName,
    string ChrootDir,
    uint Uid,
    uint Gid,
    string? NetNs,
    bool Daemonize,
    bool NewPidNs,
    IReadOnlyList<JailCgroup> Cgroups,
    ulong? FileSizeLimit,
    ulong NoFileLimit,
    IReadOnlyList<string> ExtraArgs)
{
    private const ulong DefaultNoFile = 2048;

    public string PidFilePath => Path.Combine(ChrootDir, ExecFileName + ".pid");

    /// <exception cref="JailerError">The first bad argument, as the jailer reports it.</exception>
    public static JailSettings From(JailerArguments a)
    {
        var id = a.Id;
        if (id.Length is < 1 or > 64)
            throw JailerError.InstanceId($"Invalid len ({id.Length});  the length must be between 1 and 64", $"InvalidLen({id.Length}, 1, 64)");
        for (var i = 0; i < id.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(id[i]) || id[i] == '-'))
                throw JailerError.InstanceId($"Invalid char ({id[i]}) at position {i}", $"InvalidChar('{id[i]}', {i})");
        }

        var exec = JailerFiles.Canonicalize(a.ExecFile, out var errno);
        if (errno != 0)
            throw JailerError.Canonicalize(a.ExecFile, errno);
        if (!File.Exists(exec))
            throw JailerError.NotAFile(exec);
        var execName = Path.GetFileName(exec);

        var chrootBase = JailerFiles.Canonicalize(a.ChrootBaseDir, out errno);
        if (errno != 0)
            throw JailerError.Canonicalize(a.ChrootBaseDir, errno);
        if (!Directory.Exists(chrootBase))
            throw JailerError.NotADirectory(chrootBase);
        var chrootDir = Path.Combine(chrootBase, execName, id, "root");

        if (!uint.TryParse(a.UidText, NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
            throw JailerError.Uid(a.UidText);
        if (!uint.TryParse(a.GidText, NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
            throw JailerError.Gid(a.GidText);

        var parent = a.ParentCgroup ?? execName;
        if (parent.StartsWith('/') || parent.Split('/').Any(c => c is "." or ".."))
            throw JailerError.CgroupInvalidParentPath();
        if (!byte.TryParse(a.CgroupVersionText, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            throw JailerError.CgroupInvalidVersion(a.CgroupVersionText);

        var cgroups = new List<JailCgroup>();
        foreach (var cg in a.Cgroups)
        {
            // The builder is made for the first --cgroup only: an unknown version is accepted while none is given.
            if (version is not (1 or 2))
                throw JailerError.CgroupInvalidVersion(a.CgroupVersionText);
            cgroups.Add(JailCgroup.Create(version, cg, id, parent));
        }

        ulong? fsize = null;
        var noFile = DefaultNoFile;
        foreach (var arg in a.ResourceLimits)
        {
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
                throw JailerError.ResLimitFormat(arg);
            var (name, text) = (arg[..eq], arg[(eq + 1)..]);
            var value = ParseU64(text);
            switch (name)
            {
                case "fsize": fsize = value; break;
                case "no-file": noFile = value; break;
                default: throw JailerError.ResLimitArgument(name);
            }
        }

        return new JailSettings(id, exec, execName, chrootDir, uid, gid, a.NetNs, a.Daemonize, a.NewPidNs, cgroups, fsize, noFile, a.ExtraArgs);
    }

    // Rust's u64::from_str and its ParseIntError texts.
    private static ulong ParseU64(string text)
    {
        if (text.Length == 0)
            throw JailerError.ResLimitValue(text, "cannot parse integer from empty string");
        var digits = text.StartsWith('+') ? text[1..] : text;
        if (digits.Length == 0 || !digits.All(char.IsAsciiDigit))
            throw JailerError.ResLimitValue(text, "invalid digit found in string");
        return ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw JailerError.ResLimitValue(text, "number too large to fit in target type");
    }
}
