using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>The state <c>PATCH /vm</c> asks for.</summary>
public enum VmState
{
    /// <summary>Stop the vCPUs.</summary>
    Paused,

    /// <summary>Run the vCPUs again.</summary>
    Resumed,
}

/// <summary>
/// Body of <c>PATCH /vm</c> (spec definition <c>Vm</c>; renamed because a type called <c>Vm</c> would hide the
/// <c>Kiln.Vm</c> namespace from code in other Kiln namespaces).
/// </summary>
public sealed record VmUpdate
{
    /// <summary>The state to move to; asking for the current one is not an error.</summary>
    public required VmState State { get; init; }
}

/// <summary>Answer of <c>GET /vm/config</c>: everything configured so far (spec definition <c>FullVmConfiguration</c>).</summary>
public sealed record FullVmConfiguration
{
    /// <summary>Balloon device, if any.</summary>
    public Balloon? Balloon { get; init; }

    /// <summary>Block devices, with every field filled in.</summary>
    public IReadOnlyList<Drive>? Drives { get; init; }

    /// <summary>Boot source (<c>kernel_image_path</c> is empty until one is PUT).</summary>
    [JsonPropertyName("boot-source")]
    public BootSource? BootSource { get; init; }

    /// <summary>Custom CPU template, if any.</summary>
    [JsonPropertyName("cpu-config")]
    public CpuConfig? CpuConfig { get; init; }

    /// <summary>Logger, if configured.</summary>
    public Logger? Logger { get; init; }

    /// <summary>Machine configuration.</summary>
    [JsonPropertyName("machine-config")]
    public MachineConfiguration? MachineConfig { get; init; }

    /// <summary>Metrics, if configured.</summary>
    public Metrics? Metrics { get; init; }

    /// <summary>Memory hot-plug device, if any.</summary>
    [JsonPropertyName("memory-hotplug")]
    public MemoryHotplugConfig? MemoryHotplug { get; init; }

    /// <summary>MMDS configuration, if any.</summary>
    [JsonPropertyName("mmds-config")]
    public MmdsConfig? MmdsConfig { get; init; }

    /// <summary>Network interfaces.</summary>
    [JsonPropertyName("network-interfaces")]
    public IReadOnlyList<NetworkInterface>? NetworkInterfaces { get; init; }

    /// <summary>pmem devices.</summary>
    public IReadOnlyList<Pmem>? Pmem { get; init; }

    /// <summary>vsock device, if any.</summary>
    public Vsock? Vsock { get; init; }

    /// <summary>Entropy device, if any.</summary>
    public EntropyDevice? Entropy { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
