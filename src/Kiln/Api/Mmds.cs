using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Version of the microVM metadata service.</summary>
public enum MmdsVersion
{
    /// <summary>Plain GETs (the default).</summary>
    V1,

    /// <summary>Session tokens, as IMDSv2.</summary>
    V2,
}

/// <summary>Body of <c>PUT /mmds/config</c> (spec definition <c>MmdsConfig</c>).</summary>
public sealed record MmdsConfig
{
    /// <summary>MMDS version; Firecracker defaults to <see cref="MmdsVersion.V1"/>.</summary>
    public MmdsVersion? Version { get; init; }

    /// <summary>Ids of the interfaces that answer MMDS requests; they must exist already.</summary>
    public required IReadOnlyList<string> NetworkInterfaces { get; init; }

    /// <summary>Link-local IPv4 address of the MMDS (default <c>169.254.169.254</c>).</summary>
    public string? Ipv4Address { get; init; }

    /// <summary>Answer <c>text/plain</c> whatever the Accept header, as EC2 IMDS does.</summary>
    public bool? ImdsCompat { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
