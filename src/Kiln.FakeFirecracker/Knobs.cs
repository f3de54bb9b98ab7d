// Failure knobs for tests, read once from FAKE_FC_* environment variables (documented in README.md).
using System.Globalization;

namespace Kiln.FakeFirecracker;

/// <summary>A canned answer for one request: <c>FAKE_FC_FAIL="PUT /machine-config=400:message"</c>.</summary>
internal sealed record CannedFault(string Request, int Status, string Message);

/// <summary>A request carried out whose answer is held back: <c>FAKE_FC_SLOW_ANSWER="PATCH /vm=2000"</c>.</summary>
internal sealed record SlowAnswer(string Request, int DelayMs);

internal sealed record Knobs
{
    public int ApiDelayMs { get; init; }
    public bool NoApiSocket { get; init; }
    public string? ExitAt { get; init; }
    public int ExitCode { get; init; } = 1;
    public bool IgnoreSigterm { get; init; }
    public IReadOnlyList<string> Hang { get; init; } = [];
    public IReadOnlyList<CannedFault> Fail { get; init; } = [];

    /// <summary>Requests carried out at once but answered only after a delay (a host too loaded to send the answer
    /// in time): the caller may give up while the change has happened.</summary>
    public IReadOnlyList<SlowAnswer> SlowAnswers { get; init; } = [];

    public IReadOnlyList<int> VsockPorts { get; init; } = [5000];
    public int VsockControlPort { get; init; } = 5100;
    public int RebootDelayMs { get; init; } = 1000;

    /// <summary>How long after InstanceStart the pretend guest's virtio-balloon driver activates the device
    /// (FAKE_FC_BALLOON_ACTIVATION_MS; 0, the default: at once).</summary>
    public int BalloonActivationMs { get; init; }

    public static Knobs FromEnvironment()
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable("FAKE_FC_" + name) is { Length: > 0 } v ? v : null;
        static int Int(string? v, int fallback) => v is null ? fallback : int.Parse(v, CultureInfo.InvariantCulture);

        return new Knobs
        {
            ApiDelayMs = Int(Env("API_DELAY_MS"), 0),
            NoApiSocket = Env("NO_API_SOCKET") == "1",
            ExitAt = Env("EXIT_AT"),
            ExitCode = Int(Env("EXIT_CODE"), 1),
            IgnoreSigterm = Env("IGNORE_SIGTERM") == "1",
            Hang = Env("HANG")?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [],
            Fail = Env("FAIL")?.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(ParseFault).ToArray() ?? [],
            SlowAnswers = Env("SLOW_ANSWER")?.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(ParseSlowAnswer).ToArray() ?? [],
            VsockPorts = Env("VSOCK_PORTS")?.Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray() ?? [5000],
            RebootDelayMs = Int(Env("REBOOT_DELAY_MS"), 1000),
            VsockControlPort = Int(Env("VSOCK_CONTROL_PORT"), 5100),
            BalloonActivationMs = Int(Env("BALLOON_ACTIVATION_MS"), 0),
        };
    }

    private static CannedFault ParseFault(string spec)
    {
        // "PUT /machine-config=400:message"
        var eq = spec.IndexOf('=', StringComparison.Ordinal);
        var colon = spec.IndexOf(':', eq + 1);
        if (eq < 0 || colon < 0)
        {
            throw new FormatException($"FAKE_FC_FAIL entry '{spec}' is not 'METHOD /path=STATUS:message'");
        }

        return new CannedFault(spec[..eq].Trim(), int.Parse(spec[(eq + 1)..colon], CultureInfo.InvariantCulture), spec[(colon + 1)..]);
    }

    private static SlowAnswer ParseSlowAnswer(string spec)
    {
        // "PATCH /vm=2000"
        var eq = spec.LastIndexOf('=');
        if (eq < 0 || !int.TryParse(spec[(eq + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            throw new FormatException($"FAKE_FC_SLOW_ANSWER entry '{spec}' is not 'METHOD /path=MILLISECONDS'");
        }

        return new SlowAnswer(spec[..eq].Trim(), ms);
    }

    /// <summary>
    /// Whether <paramref name="request"/> ("PUT /drives/rootfs"), the <paramref name="occurrence"/>th request with that
    /// line, is the one a knob points at: every such request ("PATCH /vm"), or only the Nth ("PATCH /vm#2", so that a
    /// resume can fail after its pause went through; no API path holds a '#').
    /// </summary>
    public static bool Matches(string knob, string request, int occurrence)
    {
        var line = knob.Trim();
        var hash = line.LastIndexOf('#');
        if (hash < 0)
        {
            return string.Equals(line, request, StringComparison.Ordinal);
        }

        return string.Equals(line[..hash].TrimEnd(), request, StringComparison.Ordinal)
            && int.TryParse(line[(hash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var nth)
            && nth == occurrence;
    }
}
