using System.Text.Json.Serialization;

namespace Kiln.Host.Network;

/// <summary>The network records Kiln keeps in its state directory (source-generated: trim/AOT clean).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SandboxNetworkInfo))]
internal sealed partial class NetworkJsonContext : JsonSerializerContext;
