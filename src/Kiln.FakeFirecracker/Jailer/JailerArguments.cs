// The jailer's command line (src/jailer/src/main.rs build_arg_parser, parsed by src/utils/src/arg_parser.rs):
// `--name value` and `--flag`; `--cgroup` and `--resource-limit` may repeat; everything after `--` goes to the jailed
// binary; the required arguments are checked in the order they are declared.
namespace Kiln.FakeFirecracker.Jailer;

internal sealed class JailerArguments
{
    private static readonly string[] Required = ["id", "exec-file", "uid", "gid"];
    private static readonly string[] ValueArgs =
        ["id", "exec-file", "uid", "gid", "chroot-base-dir", "netns", "cgroup-version", "parent-cgroup", "node"];
    private static readonly string[] MultiArgs = ["cgroup", "resource-limit"];
    private static readonly string[] FlagArgs = ["daemonize", "new-pid-ns", "help", "version"];

    private readonly Dictionary<string, string?> _single = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _multi = new(StringComparer.Ordinal);

    public string Id => _single["id"]!;

    public string ExecFile => _single["exec-file"]!;

    public string UidText => _single["uid"]!;

    public string GidText => _single["gid"]!;

    public string ChrootBaseDir => Value("chroot-base-dir") ?? "/srv/jailer";

    public string CgroupVersionText => Value("cgroup-version") ?? "1";

    public string? ParentCgroup => Value("parent-cgroup");

    public string? NetNs => Value("netns");

    public bool Daemonize => Flag("daemonize");

    public bool NewPidNs => Flag("new-pid-ns");

    public IReadOnlyList<string> Cgroups => _multi.GetValueOrDefault("cgroup") ?? [];

    public IReadOnlyList<string> ResourceLimits => _multi.GetValueOrDefault("resource-limit") ?? [];

    public IReadOnlyList<string> ExtraArgs { get; private set; } = [];

    public bool Flag(string name) => _single.ContainsKey(name);

    private string? Value(string name) => _single.GetValueOrDefault(name);

    /// <exception cref="ArgParseException">An unknown, repeated, value-less or missing required argument.</exception>
    public static JailerArguments Parse(IReadOnlyList<string> args)
    {
        var parsed = new JailerArguments();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                parsed.ExtraArgs = args.Skip(i + 1).ToArray();
                break;
            }

            var name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg;
            var multi = MultiArgs.Contains(name);
            var takesValue = multi || ValueArgs.Contains(name);
            if (!arg.StartsWith("--", StringComparison.Ordinal) || (!takesValue && !FlagArgs.Contains(name)))
            {
                throw new ArgParseException($"Found argument '{name}' which wasn't expected, or isn't valid in this context.",
                    $"UnexpectedArgument(\"{name}\")");
            }

            if (!multi && parsed._single.ContainsKey(name))
                throw new ArgParseException($"The argument '{name}' was provided more than once.", $"DuplicateArgument(\"{name}\")");

            string? value = null;
            if (takesValue)
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                    throw new ArgParseException($"The argument '{name}' requires a value, but none was supplied.", $"MissingValue(\"{name}\")");
                value = args[++i];
            }

            if (multi)
            {
                if (!parsed._multi.TryGetValue(name, out var list))
                    parsed._multi[name] = list = [];
                list.Add(value!);
            }
            else
            {
                parsed._single[name] = value;
            }
        }

        if (parsed.Flag("help") || parsed.Flag("version"))
            return parsed;
        foreach (var name in Required)
        {
            if (!parsed._single.ContainsKey(name))
                throw new ArgParseException($"Argument '{name}' required, but not found.", $"MissingArgument(\"{name}\")");
        }

        return parsed;
    }
}
