// Failure knobs for tests, read once from FAKE_FC_* environment variables (documented in README.md).
using System.Globalization;

namespace Kiln.FakeFirecracker;

/// <summary>A canned answer for one request: <c>FAKE_FC_FAIL="PUT /machine-config=400:message"</c>.</summary>
internal sealed record CannedFault(string Request, int Status, string Message);

internal sealed record Knobs
{
    public int ApiDelayMs { get; init; }
    public bool NoApiSocket { get; init; }
    public string? ExitAt { get; init; }
    public int ExitCode { get; init; } = 1;
    public bool IgnoreSigterm { get; init; }
    public IReadOnlyList<string> Hang { get; init; } = [];
    public IReadOnlyList<CannedFault> Fail { get; init; } = [];
    public IReadOnlyList<int> VsockPorts { get; init; } = [5000];
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
            VsockPorts = Env("VSOCK_PORTS")?.Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray() ?? [5000],
            RebootDelayMs = Int(Env("REBOOT_DELAY_MS"), 1000),
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

    /// <summary>Whether <paramref name="request"/> ("PUT /drives/rootfs") names the request a knob points at.</summary>
    public static bool Matches(string knob, string request) => string.Equals(knob.Trim(), request, StringComparison.Ordinal);
}
