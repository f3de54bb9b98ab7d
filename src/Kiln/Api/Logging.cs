// Firecracker's own log and metrics outputs (PUT /logger, PUT /metrics).
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Firecracker's log level (named apart from Microsoft.Extensions.Logging's LogLevel).</summary>
public enum FirecrackerLogLevel
{
    /// <summary>Errors only.</summary>
    Error,

    /// <summary>Warnings and errors.</summary>
    Warning,

    /// <summary>Informational messages and above (Firecracker's default).</summary>
    Info,

    /// <summary>Debug messages and above.</summary>
    Debug,

    /// <summary>Everything.</summary>
    Trace,

    /// <summary>Nothing.</summary>
    Off,
}

/// <summary>Body of <c>PUT /logger</c> (spec definition <c>Logger</c>).</summary>
public sealed record Logger
{
    /// <summary>Minimum level written.</summary>
    public FirecrackerLogLevel? Level { get; init; }

    /// <summary>File or named pipe for the log; Firecracker creates a missing file.</summary>
    public string? LogPath { get; init; }

    /// <summary>Whether lines show their level.</summary>
    public bool? ShowLevel { get; init; }

    /// <summary>Whether lines show the source file and line.</summary>
    public bool? ShowLogOrigin { get; init; }

    /// <summary>Only log messages of this module path, e.g. <c>api_server::request</c>.</summary>
    public string? Module { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Body of <c>PUT /metrics</c> (spec definition <c>Metrics</c>).</summary>
public sealed record Metrics
{
    /// <summary>File or named pipe the JSON metrics are flushed to, one object per line.</summary>
    public required string MetricsPath { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
