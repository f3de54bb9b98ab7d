// The shapes Firecracker's Rust structs give to serde: enough to refuse a body exactly where and how serde_json would.
namespace Kiln.FakeFirecracker.Json;

/// <summary>What a JSON value must look like; <see cref="Expecting"/> is serde's "expected …" wording.</summary>
internal abstract record SerdeSpec
{
    public abstract string Expecting { get; }
}

internal sealed record StrSpec : SerdeSpec
{
    public static readonly StrSpec Instance = new();
    public override string Expecting => "a string";
}

/// <summary>A string a custom Deserialize impl checks (a MAC address, a log level); <paramref name="Check"/> returns the
/// serde custom error text, or null when the value is fine.</summary>
internal sealed record CheckedStrSpec(Func<string, string?> Check) : SerdeSpec
{
    public override string Expecting => "a string";
}

internal sealed record BoolSpec : SerdeSpec
{
    public static readonly BoolSpec Instance = new();
    public override string Expecting => "a boolean";
}

/// <summary>An unsigned Rust integer (u8, u16, u32, u64, usize).</summary>
internal sealed record UIntSpec(string RustName, ulong Max) : SerdeSpec
{
    public static readonly UIntSpec U8 = new("u8", byte.MaxValue);
    public static readonly UIntSpec U16 = new("u16", ushort.MaxValue);
    public static readonly UIntSpec U32 = new("u32", uint.MaxValue);
    public static readonly UIntSpec U64 = new("u64", ulong.MaxValue);
    public static readonly UIntSpec USize = new("usize", ulong.MaxValue);
    public override string Expecting => RustName;
}

/// <summary>A Rust enum of unit variants, spelled as strings on the wire.</summary>
internal sealed record EnumSpec(string RustName, params string[] Variants) : SerdeSpec
{
    public override string Expecting => $"enum {RustName}";
}

internal sealed record SeqSpec(SerdeSpec Item) : SerdeSpec
{
    public override string Expecting => "a sequence";
}

internal sealed record OptSpec(SerdeSpec Inner) : SerdeSpec
{
    public override string Expecting => Inner.Expecting;
}

/// <summary>serde_json::Value: anything goes.</summary>
internal sealed record AnySpec : SerdeSpec
{
    public static readonly AnySpec Instance = new();
    public override string Expecting => "any valid JSON value";
}

internal sealed record StructSpec(string RustName, params SerdeField[] Fields) : SerdeSpec
{
    public override string Expecting => $"struct {RustName}";
}

/// <summary>A struct field; <paramref name="Required"/> is false for Option fields and #[serde(default)] ones.</summary>
internal sealed record SerdeField(string Name, SerdeSpec Type, bool Required = false)
{
    public static SerdeField Req(string name, SerdeSpec type) => new(name, type, true);
    public static SerdeField Opt(string name, SerdeSpec type) => new(name, new OptSpec(type));
    public static SerdeField Def(string name, SerdeSpec type) => new(name, type);
}
