// Firecracker's own argument parser (src/utils/src/arg_parser.rs): `--name value` and `--flag`, nothing else.
namespace Kiln.FakeFirecracker;

/// <summary>An argument error; <see cref="DebugForm"/> is the Rust Debug of the ArgParser error variant.</summary>
internal sealed class ArgParseException(string message, string debugForm) : Exception(message)
{
    public string DebugForm { get; } = debugForm;
}

internal sealed class CommandLine
{
    private static readonly string[] ValueArgs =
    [
        "api-sock", "id", "config-file", "log-path", "level", "module", "metrics-path", "seccomp-filter",
        "http-api-max-payload-size", "mmds-size-limit", "metadata", "describe-snapshot", "start-time-us",
        "start-time-cpu-us", "parent-cpu-time-us",
    ];

    private static readonly string[] FlagArgs =
    [
        "no-api", "show-level", "show-log-origin", "boot-timer", "no-seccomp", "enable-pci", "version", "help",
        "snapshot-version",
    ];

    private readonly Dictionary<string, string?> _given = new(StringComparer.Ordinal);

    public string? Value(string name) => _given.GetValueOrDefault(name);

    public bool Flag(string name) => _given.ContainsKey(name);

    public string ApiSock => Value("api-sock") ?? "/run/firecracker.socket";

    public string Id => Value("id") ?? "anonymous-instance";

    /// <exception cref="ArgParseException">An unknown, repeated or value-less argument.</exception>
    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        var cl = new CommandLine();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            var name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg;
            var takesValue = ValueArgs.Contains(name);
            if (!arg.StartsWith("--", StringComparison.Ordinal) || (!takesValue && !FlagArgs.Contains(name)))
            {
                throw new ArgParseException($"Found argument '{name}' which wasn't expected, or isn't valid in this context.",
                    $"UnexpectedArgument(\"{name}\")");
            }

            if (cl._given.ContainsKey(name))
            {
                throw new ArgParseException($"The argument '{name}' was provided more than once.", $"DuplicateArgument(\"{name}\")");
            }

            string? value = null;
            if (takesValue)
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new ArgParseException($"The argument '{name}' requires a value, but none was supplied.", $"MissingValue(\"{name}\")");
                }

                value = args[++i];
            }

            cl._given[name] = value;
        }

        if (cl.Flag("no-api") && !cl.Flag("config-file") && !cl.Flag("help") && !cl.Flag("version"))
        {
            throw new ArgParseException("Argument 'config-file' required, but not found.", "MissingArgument(\"config-file\")");
        }

        return cl;
    }
}
