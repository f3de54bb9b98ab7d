using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Static CPU templates (deprecated by Firecracker in favour of <see cref="CpuConfig"/>; spec definition <c>CpuTemplate</c>).</summary>
public enum CpuTemplate
{
    /// <summary>Intel C3.</summary>
    C3,

    /// <summary>Intel T2.</summary>
    T2,

    /// <summary>Intel T2S.</summary>
    T2S,

    /// <summary>Intel T2CL.</summary>
    T2CL,

    /// <summary>AMD T2A.</summary>
    T2A,

    /// <summary>ARM V1N1.</summary>
    V1N1,

    /// <summary>No template (Firecracker's default).</summary>
    None,
}

/// <summary>Huge pages backing guest memory.</summary>
public enum HugePages
{
    /// <summary>Normal 4 KiB pages.</summary>
    None,

    /// <summary>2 MiB huge pages.</summary>
    [JsonStringEnumMemberName("2M")]
    Size2M,
}

/// <summary>
/// vCPUs, memory and their options: body of <c>PUT /machine-config</c>, answer of <c>GET /machine-config</c>
/// (spec definition <c>MachineConfiguration</c>). Firecracker's defaults: 1 vCPU, 128 MiB, no SMT.
/// </summary>
public sealed record MachineConfiguration
{
    /// <summary>Number of vCPUs: 1 or an even number up to 32.</summary>
    public required int VcpuCount { get; init; }

    /// <summary>Guest memory in MiB; a non-zero multiple of the page size.</summary>
    public required int MemSizeMib { get; init; }

    /// <summary>Simultaneous multithreading (x86 only).</summary>
    public bool? Smt { get; init; }

    /// <summary>Static CPU template (deprecated).</summary>
    public CpuTemplate? CpuTemplate { get; init; }

    /// <summary>Dirty page tracking, needed for diff snapshots.</summary>
    public bool? TrackDirtyPages { get; init; }

    /// <summary>Huge pages backing guest memory.</summary>
    public HugePages? HugePages { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>
/// Body of <c>PATCH /machine-config</c>: the spec names <c>MachineConfiguration</c> but Firecracker takes any subset
/// of its fields (e.g. <c>{"mem_size_mib": 512}</c>), so every field is optional here.
/// </summary>
public sealed record MachineConfigurationUpdate
{
    /// <summary>New number of vCPUs.</summary>
    public int? VcpuCount { get; init; }

    /// <summary>New guest memory in MiB.</summary>
    public int? MemSizeMib { get; init; }

    /// <summary>Simultaneous multithreading (x86 only).</summary>
    public bool? Smt { get; init; }

    /// <summary>Static CPU template (deprecated).</summary>
    public CpuTemplate? CpuTemplate { get; init; }

    /// <summary>Dirty page tracking, needed for diff snapshots.</summary>
    public bool? TrackDirtyPages { get; init; }

    /// <summary>Huge pages backing guest memory.</summary>
    public HugePages? HugePages { get; init; }
}
