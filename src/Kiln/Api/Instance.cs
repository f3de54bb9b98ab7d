// Wire records for the instance as a whole: GET /, PUT /actions, GET /version and the error body.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>The state Firecracker reports in <see cref="InstanceInfo.State"/>.</summary>
public enum InstanceState
{
    /// <summary>Configured (or not) but <c>InstanceStart</c> has not run yet.</summary>
    [JsonStringEnumMemberName("Not started")]
    NotStarted,

    /// <summary>The guest's vCPUs run.</summary>
    Running,

    /// <summary>The guest's vCPUs are stopped (PATCH /vm or a snapshot load without resume).</summary>
    Paused,
}

/// <summary>Answer of <c>GET /</c> (spec definition <c>InstanceInfo</c>).</summary>
public sealed record InstanceInfo
{
    /// <summary>Application name, <c>Firecracker</c>.</summary>
    public required string AppName { get; init; }

    /// <summary>The instance id given with <c>--id</c> (<c>anonymous-instance</c> without it).</summary>
    public required string Id { get; init; }

    /// <summary>Current state of the microVM.</summary>
    public required InstanceState State { get; init; }

    /// <summary>Firecracker's version, e.g. <c>1.16.1</c>.</summary>
    public required string VmmVersion { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>The actions <c>PUT /actions</c> accepts.</summary>
public enum InstanceActionType
{
    /// <summary>Write the metrics to the metrics file now.</summary>
    FlushMetrics,

    /// <summary>Boot the configured microVM.</summary>
    InstanceStart,

    /// <summary>Send Ctrl+Alt+Del to the guest (x86 keyboard controller); the guest decides what to do.</summary>
    SendCtrlAltDel,
}

/// <summary>Body of <c>PUT /actions</c> (spec definition <c>InstanceActionInfo</c>).</summary>
public sealed record InstanceActionInfo
{
    /// <summary>The action to perform.</summary>
    public required InstanceActionType ActionType { get; init; }
}

/// <summary>
/// Answer of <c>GET /version</c> (spec definition <c>FirecrackerVersion</c>; renamed so that the comparable
/// <see cref="FirecrackerVersion"/> value keeps the short name). Use <see cref="Version"/> to compare it.
/// </summary>
public sealed record FirecrackerVersionInfo
{
    /// <summary>The build version as Firecracker prints it, e.g. <c>1.16.1</c>.</summary>
    public required string FirecrackerVersion { get; init; }

    /// <summary>The parsed <see cref="FirecrackerVersion"/>; throws <see cref="FormatException"/> when it is not a version.</summary>
    [JsonIgnore]
    public FirecrackerVersion Version => Api.FirecrackerVersion.Parse(FirecrackerVersion);

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>
/// The body of an error answer (spec definition <c>Error</c>): <c>{"fault_message": "…"}</c>. Firecracker answers a
/// request line it cannot parse with <c>{"error": "…"}</c> instead, which <see cref="Error"/> holds.
/// </summary>
public sealed record ApiError
{
    /// <summary>Firecracker's description of what went wrong.</summary>
    public string? FaultMessage { get; init; }

    /// <summary>The message of the out-of-spec <c>{"error": "…"}</c> body; not part of the spec.</summary>
    public string? Error { get; init; }

    /// <summary>Any other fields of the body.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
