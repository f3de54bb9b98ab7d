// Custom CPU templates (PUT /cpu-config). Register values stay strings: Firecracker accepts hex, binary or decimal
// and bitmaps with 'x' for "leave alone", which no integer type can hold.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Body of <c>PUT /cpu-config</c>: modifiers of CPU features (spec definition <c>CpuConfig</c>).</summary>
public sealed record CpuConfig
{
    /// <summary>KVM capabilities as numeric strings; a leading <c>!</c> removes one (e.g. <c>"!121"</c>).</summary>
    public IReadOnlyList<string>? KvmCapabilities { get; init; }

    /// <summary>CPUID leaf modifiers (x86_64 only).</summary>
    public IReadOnlyList<CpuidLeafModifier>? CpuidModifiers { get; init; }

    /// <summary>Model specific register modifiers (x86_64 only).</summary>
    public IReadOnlyList<MsrModifier>? MsrModifiers { get; init; }

    /// <summary>Register modifiers (aarch64 only).</summary>
    public IReadOnlyList<ArmRegisterModifier>? RegModifiers { get; init; }

    /// <summary>vCPU feature modifiers (aarch64 only).</summary>
    public IReadOnlyList<VcpuFeatures>? VcpuFeatures { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Modifier of a CPUID leaf and subleaf (spec definition <c>CpuidLeafModifier</c>).</summary>
public sealed record CpuidLeafModifier
{
    /// <summary>Leaf index as a hex, binary or decimal string (<c>"0x0"</c>).</summary>
    public required string Leaf { get; init; }

    /// <summary>Subleaf index as a hex, binary or decimal string.</summary>
    public required string Subleaf { get; init; }

    /// <summary>KVM feature flags of this leaf and subleaf.</summary>
    public required int Flags { get; init; }

    /// <summary>Modifiers of the leaf's registers.</summary>
    public required IReadOnlyList<CpuidRegisterModifier> Modifiers { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>A CPUID output register.</summary>
public enum CpuidRegister
{
    /// <summary>EAX.</summary>
    [JsonStringEnumMemberName("eax")]
    Eax,

    /// <summary>EBX.</summary>
    [JsonStringEnumMemberName("ebx")]
    Ebx,

    /// <summary>ECX.</summary>
    [JsonStringEnumMemberName("ecx")]
    Ecx,

    /// <summary>EDX.</summary>
    [JsonStringEnumMemberName("edx")]
    Edx,
}

/// <summary>Modifier of one CPUID register (spec definition <c>CpuidRegisterModifier</c>).</summary>
public sealed record CpuidRegisterModifier
{
    /// <summary>The register.</summary>
    public required CpuidRegister Register { get; init; }

    /// <summary><c>0b</c> and 32 characters of <c>0</c> (clear), <c>1</c> (set) or <c>x</c> (leave alone).</summary>
    public required string Bitmap { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Modifier of a model specific register (spec definition <c>MsrModifier</c>).</summary>
public sealed record MsrModifier
{
    /// <summary>32-bit MSR address as a hex, binary or decimal string.</summary>
    public required string Addr { get; init; }

    /// <summary><c>0b</c> and 64 characters of <c>0</c>, <c>1</c> or <c>x</c> (underscores allowed).</summary>
    public required string Bitmap { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Modifier of an ARM register (spec definition <c>ArmRegisterModifier</c>).</summary>
public sealed record ArmRegisterModifier
{
    /// <summary>64-bit register address as a hex, binary or decimal string.</summary>
    public required string Addr { get; init; }

    /// <summary><c>0b</c> and up to 128 characters of <c>0</c>, <c>1</c> or <c>x</c>.</summary>
    public required string Bitmap { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Modifier of the vCPU features array of <c>kvm_vcpu_init</c> (spec definition <c>VcpuFeatures</c>).</summary>
public sealed record VcpuFeatures
{
    /// <summary>Index in <c>kvm_vcpu_init.features</c>.</summary>
    public required int Index { get; init; }

    /// <summary><c>0b</c> and 32 characters of <c>0</c>, <c>1</c> or <c>x</c>.</summary>
    public required string Bitmap { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
