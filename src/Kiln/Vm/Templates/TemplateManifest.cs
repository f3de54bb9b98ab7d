// template.json: what a template directory holds and what it was made from. The machine itself is kept as
// Firecracker exported it (vm-config.json, GET /vm/config while paused) — kernel, drives, devices, vCPUs, memory.
using System.Text.Json.Serialization;
using Kiln.Host;

namespace Kiln.Vm.Templates;

/// <summary>One drive of a template.</summary>
/// <param name="DriveId">Firecracker's drive id.</param>
/// <param name="RecordedPath">The path the snapshot recorded (Firecracker opens it again on load).</param>
/// <param name="IsReadOnly">Read-only drives are shared by every clone; writable ones are copied per clone.</param>
/// <param name="TemplateFile">The template's own copy of a writable drive (relative to the template); null when shared.</param>
public sealed record TemplateDrive(string DriveId, string RecordedPath, bool IsReadOnly, string? TemplateFile)
{
    /// <summary>
    /// The host file behind a shared read-only drive whose recorded path is a path inside a jail (a template made from
    /// a jailed VM records <c>/drives/&lt;id&gt;</c>); null when the recorded path is the host file itself.
    /// </summary>
    public string? SharedPath { get; init; }

    /// <summary>The host file a clone shares for a read-only drive.</summary>
    [JsonIgnore]
    public string SharedHostPath => SharedPath ?? RecordedPath;
}

/// <summary>The contents of <c>template.json</c>.</summary>
public sealed record TemplateManifest
{
    /// <summary>The manifest format; a newer one is refused.</summary>
    public int Format { get; init; } = 1;

    /// <summary>The template's name (its directory's name).</summary>
    public required string Name { get; init; }

    /// <summary>When it was made.</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>The Firecracker release that wrote the snapshot (GET /version of the source VMM).</summary>
    public required string FirecrackerVersion { get; init; }

    /// <summary>The state file, relative to the template.</summary>
    public string StateFile { get; init; } = "snapshot.state";

    /// <summary>The memory file, relative to the template.</summary>
    public string MemoryFile { get; init; } = "snapshot.mem";

    /// <summary>vCPUs of the snapshotted machine.</summary>
    public int VcpuCount { get; init; }

    /// <summary>Guest memory, MiB.</summary>
    public long MemSizeMib { get; init; }

    /// <summary>The drives, in Firecracker's order.</summary>
    public IReadOnlyList<TemplateDrive> Drives { get; init; } = [];

    /// <summary>The vsock socket the snapshot recorded; each clone gets its own instead. Null without vsock.</summary>
    public string? VsockRecordedPath { get; init; }

    /// <summary>The network interfaces' ids: each clone needs a TAP override for every one.</summary>
    public IReadOnlyList<string> NetworkInterfaceIds { get; init; } = [];

    /// <summary>Whether the source ran under the jailer: its snapshot records paths inside its chroot, so its clones
    /// must be jailed too.</summary>
    public bool Jailed { get; init; }

    /// <summary>Every file a clone reads, fingerprinted when the template was made (template files by relative path).</summary>
    public IReadOnlyList<FileFingerprint> Files { get; init; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(TemplateManifest))]
internal sealed partial class TemplateJsonContext : JsonSerializerContext;
