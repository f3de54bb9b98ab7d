// The shapes `--json` prints. They are the CLI's stable contract (documented in README.md): add fields, never rename.
// Keys are camelCase, enums are strings, absent values are null rather than missing.
using System.Text.Json;
using System.Text.Json.Serialization;
using Kiln.Sandbox;
using Kiln.Vmm;

namespace Kiln.Cli.Infrastructure;

internal sealed record SandboxSummaryJson(
    string Name, SandboxState State, int? Pid, int Vcpus, int MemoryMiB, DateTimeOffset? StartedAt, double? UptimeSeconds);

internal sealed record RunResultJson(
    string Name, SandboxState State, int? Pid, string Directory, string SocketPath, string ConsolePath);

internal sealed record CloneResultJson(
    string Name, SandboxState State, int? Pid, string Directory, string SocketPath, string ConsolePath, string? VsockPath, string Template);

internal sealed record PathsJson(string Directory, string Socket, string Console, string VmmLog);

internal sealed record ConfigJson(
    string FirecrackerPath, string KernelPath, string? InitrdPath, string? RootfsPath, bool RootfsReadOnly,
    IReadOnlyList<string> KernelArgs, int Vcpus, int MemoryMiB, int BlockPoolSize, double StopTimeoutSeconds)
{
    /// <summary>What the sandbox's VM is restored from (every start loads it); null for a sandbox that boots.</summary>
    public RestoreJson? Restore { get; init; }
}

internal sealed record RestoreJson(string? Template, string? TemplateDirectory, string? SnapshotStatePath, string? SnapshotMemoryPath,
    bool TrackDirtyPages, bool ClockRealtime, bool Resume, IReadOnlyList<DriveBindingJson> Drives);

/// <summary>A snapshot restore's drive: where the snapshot recorded it, and the file this sandbox has there.</summary>
internal sealed record DriveBindingJson(string RecordedPath, string File, bool ReadOnly);

// InDoubt: a drive add/rm of this slot was interrupted after its request went out; HostPath may be attached or not
// until the next command asks Firecracker.
internal sealed record PoolSlotJson(int Slot, string DriveId, string GuestDevice, string? HostPath, bool ReadOnly, bool InDoubt);

// One flat shape for every kind of boot-time device: the fields a kind does not have are null.
internal sealed record DeviceJson(
    string Kind, string? Id, string? HostPath, bool? ReadOnly, string? TapName, string? MacAddress, uint? GuestCid, string? UdsPath);

// The root= the guest boots with: device null when there is none (initrd only) or the image could not be read.
internal sealed record RootDeviceJson(string? Device, string Reason, string Explanation);

internal sealed record InspectJson(
    string Name, SandboxState State, VmmOwnership Ownership, int? Pid, DateTimeOffset? StartedAt, double? UptimeSeconds, PathsJson Paths,
    ConfigJson Config, IReadOnlyList<PoolSlotJson> PoolSlots, IReadOnlyList<DeviceJson> Devices, JsonElement? VmConfig, string? VmConfigError,
    RootDeviceJson RootDevice,
    JailJson? Jail = null)
{
    /// <summary>The sandbox's own network, while Kiln has it set up.</summary>
    public NetworkJson? Network { get; init; }

    /// <summary>An Exited sandbox's VMM's exit code, when its owner saw it end.</summary>
    public int? ExitCode { get; init; }

    /// <summary>The signal that killed an Exited sandbox's VMM, when its owner saw it end.</summary>
    public int? ExitSignal { get; init; }

    /// <summary>The PID of the console keeper writing a detached VM's console log, while it runs.</summary>
    public int? ConsoleKeeperPid { get; init; }

    /// <summary>True when a pause or resume got no answer: the state is what was known before it.</summary>
    public bool StateInDoubt { get; init; }
}

internal sealed record NetworkJson(
    string Mode, string? Namespace, bool NamespaceCreatedByKiln, string? Tap, string? TapAddress, string? GuestAddress, string? GuestMac,
    string? HostVeth, string? HostVethAddress, string? NamespaceVethAddress, string? KernelIpArgument);

/// <summary>A jailed sandbox's jail: where its chroot is, who the VMM runs as, its cgroups (asked and read back).</summary>
internal sealed record JailJson(string Jailer, string Chroot, string ApiSocket, uint Uid, uint Gid, int CgroupVersion, bool NewPidNamespace, string? NetworkNamespace,
    int? Pid, IReadOnlyList<JailCgroupJson> Cgroups);

internal sealed record JailCgroupJson(string Directory, string File, string Requested, string? Current);

internal sealed record StateJson(string Name, SandboxState State);

internal sealed record RemoveJson(string Name, bool Removed);

internal sealed record DriveAddJson(string Name, int Slot, string DriveId, string GuestDevice, string HostPath, bool ReadOnly);

internal sealed record DriveRemoveJson(string Name, int Slot);

internal sealed record LogLineJson(string Line);

internal sealed record VcpuThreadJson(int Index, int ThreadId);

internal sealed record ThreadsJson(string Name, int? Pid, IReadOnlyList<VcpuThreadJson> Vcpus);

internal sealed record FirecrackerVersionJson(
    bool Found, string? Path, string? Source, string? Version, bool? Supported, string? SupportedRange, string? Error);

internal sealed record VersionJson(string Kiln, FirecrackerVersionJson Firecracker);

internal sealed record TemplateJson(string Name, string Directory, string FirecrackerVersion, DateTimeOffset CreatedAt, int VcpuCount, long MemSizeMib,
    IReadOnlyList<string> Drives);

internal sealed record TemplateRemoveJson(string Name, bool Removed);

internal sealed record SnapshotJson(string Name, SandboxState State, string StatePath, string MemoryPath);

internal sealed record DemoStepJson(string Step, double Milliseconds, string Detail);

internal sealed record DemoJson(
    string Hypervisor, string FirecrackerPath, string Reason, string Root, bool Succeeded, double TotalMilliseconds,
    IReadOnlyList<DemoStepJson> Steps, string? Error);

internal sealed record ExecResultJson(int ExitCode, int? Signal, bool TimedOut, string Stdout, string Stderr);

internal sealed record CopyResultJson(string Source, string Destination, long Bytes);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    WriteIndented = true)]
[JsonSerializable(typeof(SandboxSummaryJson))]
[JsonSerializable(typeof(ExecResultJson))]
[JsonSerializable(typeof(CopyResultJson))]
[JsonSerializable(typeof(IReadOnlyList<SandboxSummaryJson>))]
[JsonSerializable(typeof(RunResultJson))]
[JsonSerializable(typeof(IReadOnlyList<CloneResultJson>))]
[JsonSerializable(typeof(InspectJson))]
[JsonSerializable(typeof(StateJson))]
[JsonSerializable(typeof(TemplateJson))]
[JsonSerializable(typeof(IReadOnlyList<TemplateJson>))]
[JsonSerializable(typeof(TemplateRemoveJson))]
[JsonSerializable(typeof(RemoveJson))]
[JsonSerializable(typeof(DriveAddJson))]
[JsonSerializable(typeof(DriveRemoveJson))]
[JsonSerializable(typeof(LogLineJson))]
[JsonSerializable(typeof(ThreadsJson))]
[JsonSerializable(typeof(VersionJson))]
[JsonSerializable(typeof(SnapshotJson))]
[JsonSerializable(typeof(DemoJson))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(MemJson))]
[JsonSerializable(typeof(StatsJson))]
internal sealed partial class CliJsonContext : JsonSerializerContext;

/// <summary>Firecracker's own configuration export, embedded verbatim in <c>inspect --json</c>.</summary>
internal static class VmConfigJson
{
    // Firecracker's own (snake_case) context, so the shape is exactly what GET /vm/config answered.
    public static JsonElement ToElement(Kiln.Api.FullVmConfiguration configuration) =>
        JsonSerializer.SerializeToElement(configuration, Kiln.Api.FirecrackerJsonContext.Default.FullVmConfiguration);
}
