// The agent's command line:
//   kiln-agent [--vsock-port N] [--unix PATH] [--exit-with-parent] [--request-timeout-ms N]
//   kiln-agent --exec-as UID GID PATH ARGV...        (internal: drop to a user and exec; see Spawner)
// As PID 1 it becomes the guest's init and listens on vsock port 1024 unless told otherwise.
using System.Globalization;

namespace Kiln.GuestAgent;

internal sealed record AgentOptions
{
    public const int DefaultVsockPort = 1024;

    public int? VsockPort { get; init; }

    public string? UnixSocket { get; init; }

    /// <summary>How long a client may take to send its Hello and request: a stalled client cannot hold a connection.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Ends with the process that started it: the stand-in's and the tests' agents.</summary>
    public bool ExitWithParent { get; init; }

    /// <summary>Whether this agent is the guest's init (PID 1, or the server PID 1 started).</summary>
    public bool IsInit { get; init; }

    public string SelfPath { get; init; } = Environment.ProcessPath ?? "/proc/self/exe";

    /// <summary>
    /// Arguments the init agent did not know and passed over. The kernel hands every boot argument it does not know
    /// itself (and that has no '=') to init, so one stray word on the kernel command line must not end the guest.
    /// </summary>
    public IReadOnlyList<string> Ignored { get; init; } = [];

    /// <exception cref="ArgumentException">An unknown (unless init) or incomplete option, naming it.</exception>
    public static AgentOptions Parse(IReadOnlyList<string> args)
    {
        // As init (PID 1, or the server it started: --init) unknown arguments are the kernel's leftovers; otherwise
        // whoever started the agent typed them, and a typo is better refused.
        var isInit = args.Contains("--init");
        var ignored = new List<string>();
        var options = new AgentOptions();
        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--vsock-port":
                    var text = Value();
                    options = options with
                    {
                        VsockPort = uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < uint.MaxValue
                            ? (int)port
                            : throw new ArgumentException($"--vsock-port: '{text}' is not a port number."),
                    };
                    break;
                case "--unix":
                    options = options with { UnixSocket = Value() };
                    break;
                case "--request-timeout-ms":
                    var ms = Value();
                    options = options with
                    {
                        RequestTimeout = uint.TryParse(ms, NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m > 0
                            ? TimeSpan.FromMilliseconds(m)
                            : throw new ArgumentException($"--request-timeout-ms: '{ms}' is not a positive number."),
                    };
                    break;
                case "--exit-with-parent":
                    options = options with { ExitWithParent = true };
                    break;
                case "--init":
                    options = options with { IsInit = true };
                    break;
                default:
                    if (!isInit)
                        throw new ArgumentException($"Unknown option '{args[i]}'.");
                    ignored.Add(args[i]);
                    break;
            }
        }

        options = options with { Ignored = ignored };
        if (options.IsInit && options.VsockPort is null && options.UnixSocket is null)
            options = options with { VsockPort = DefaultVsockPort };
        if (options.VsockPort is null && options.UnixSocket is null)
            throw new ArgumentException("Give --vsock-port PORT and/or --unix PATH.");
        return options;
    }
}
