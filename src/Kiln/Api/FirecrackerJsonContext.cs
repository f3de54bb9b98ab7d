// The one place Firecracker's JSON is (de)serialised: source-generated, so no reflection and AOT-clean.
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>
/// Source-generated System.Text.Json context for every Firecracker wire record: snake_case names, nulls left out
/// on write (Firecracker refuses <c>null</c> for most optional fields), enums as the strings Firecracker spells.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(ArmRegisterModifier))]
[JsonSerializable(typeof(Balloon))]
[JsonSerializable(typeof(BalloonHintingStatus))]
[JsonSerializable(typeof(BalloonStartCmd))]
[JsonSerializable(typeof(BalloonStats))]
[JsonSerializable(typeof(BalloonStatsUpdate))]
[JsonSerializable(typeof(BalloonUpdate))]
[JsonSerializable(typeof(BootSource))]
[JsonSerializable(typeof(CpuConfig))]
[JsonSerializable(typeof(CpuidLeafModifier))]
[JsonSerializable(typeof(CpuidRegisterModifier))]
[JsonSerializable(typeof(CpuTemplate))]
[JsonSerializable(typeof(Drive))]
[JsonSerializable(typeof(EntropyDevice))]
[JsonSerializable(typeof(FirecrackerVersionInfo))]
[JsonSerializable(typeof(FullVmConfiguration))]
[JsonSerializable(typeof(InstanceActionInfo))]
[JsonSerializable(typeof(InstanceInfo))]
[JsonSerializable(typeof(Logger))]
[JsonSerializable(typeof(MachineConfiguration))]
[JsonSerializable(typeof(MachineConfigurationUpdate))]
[JsonSerializable(typeof(MemoryBackend))]
[JsonSerializable(typeof(MemoryHotplugConfig))]
[JsonSerializable(typeof(MemoryHotplugSizeUpdate))]
[JsonSerializable(typeof(MemoryHotplugStatus))]
[JsonSerializable(typeof(Metrics))]
[JsonSerializable(typeof(MmdsConfig))]
[JsonSerializable(typeof(MsrModifier))]
[JsonSerializable(typeof(NetworkInterface))]
[JsonSerializable(typeof(NetworkOverride))]
[JsonSerializable(typeof(PartialDrive))]
[JsonSerializable(typeof(PartialNetworkInterface))]
[JsonSerializable(typeof(PartialPmem))]
[JsonSerializable(typeof(Pmem))]
[JsonSerializable(typeof(RateLimiter))]
[JsonSerializable(typeof(SerialDevice))]
[JsonSerializable(typeof(SnapshotCreateParams))]
[JsonSerializable(typeof(SnapshotLoadParams))]
[JsonSerializable(typeof(TokenBucket))]
[JsonSerializable(typeof(VcpuFeatures))]
[JsonSerializable(typeof(VmUpdate))]
[JsonSerializable(typeof(Vsock))]
[JsonSerializable(typeof(VsockOverride))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(JsonNode))]
[JsonSerializable(typeof(JsonElement))]
public sealed partial class FirecrackerJsonContext : JsonSerializerContext;
