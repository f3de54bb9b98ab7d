using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Body of <c>PUT /boot-source</c> and part of <c>GET /vm/config</c> (spec definition <c>BootSource</c>).</summary>
public sealed record BootSource
{
    /// <summary>Host path of the guest kernel image; Firecracker opens it when the boot source is PUT.</summary>
    public required string KernelImagePath { get; init; }

    /// <summary>Host path of an initrd image, if any.</summary>
    public string? InitrdPath { get; init; }

    /// <summary>Kernel command line; Firecracker appends its own device arguments.</summary>
    public string? BootArgs { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
