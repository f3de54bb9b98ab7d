// What every resource handler gets: the request, the VMM, and helpers that fail exactly as Firecracker's parsers do.
using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>One HTTP request as the API server parsed it; <see cref="Body"/> is null when there was none.</summary>
internal sealed record ApiRequest(string Method, string Path, byte[]? Body)
{
    /// <summary>Rust's Debug name of the method: Get, Put, Patch, Delete.</summary>
    public string MethodName => Method[..1] + Method[1..].ToLowerInvariant();

    /// <summary>"PUT /drives/rootfs", the form the FAKE_FC_* knobs name requests by.</summary>
    public string Line => $"{Method} {Path}";
}

/// <summary>The answer; a null body is a 204.</summary>
internal sealed record ApiResponse(int Status, string? Body, bool Deprecation = false)
{
    public static readonly ApiResponse NoContent = new(204, null);

    public static ApiResponse Ok(string json) => new(200, json);
}

internal sealed class ApiCall(VmmCore vmm, ApiRequest request, string[] tokens)
{
    public VmmCore Vmm { get; } = vmm;
    public ApiRequest Request { get; } = request;

    /// <summary>The path split on '/', leading slashes trimmed (Firecracker's split_terminator).</summary>
    public string[] Tokens { get; } = tokens;

    /// <summary>A deprecation warning, logged (and flagged with a Deprecation header) whatever the outcome.</summary>
    public string? Deprecation { get; set; }

    /// <summary>Set by handlers whose duration Firecracker logs ("'pause vm' API request took N us.").</summary>
    public string? TimedAction { get; set; }

    public string? Token(int i) => i < Tokens.Length ? Tokens[i] : null;

    public JsonObject Parse(StructSpec spec) => Parse(Request.Body!, spec);

    public static JsonObject Parse(byte[] body, StructSpec spec)
    {
        try
        {
            return SerdeParser.Parse(body, spec)!.AsObject();
        }
        catch (SerdeException e)
        {
            throw SerdeFault(e.Message, e.DebugForm);
        }
    }

    public static RequestErrorException SerdeFault(string message, string debugForm) =>
        new($"An error occurred when deserializing the json body of a request: {message}.", $"SerdeJson({debugForm})");

    /// <summary>Firecracker's checked_id: not empty, only alphanumerics and underscores.</summary>
    public static string CheckedId(string? id)
    {
        if (string.IsNullOrEmpty(id))
        {
            throw new RequestErrorException("The ID cannot be empty.", "EmptyID");
        }

        if (!id.All(c => c == '_' || char.IsLetterOrDigit(c)))
        {
            throw new RequestErrorException("API Resource IDs can only contain alphanumeric characters and underscores.", "InvalidID");
        }

        return id;
    }

    public static RequestErrorException Generic(string message) =>
        new(message, $"Generic(BadRequest, {RustDebug.Str(message)})");

    public static void CheckPathId(string pathId, string bodyId)
    {
        if (pathId != bodyId)
        {
            throw Generic("The id from the path does not match the id from the body!");
        }
    }
}

internal static class JsonObjectExtensions
{
    public static string Str(this JsonObject o, string key) => o[key]!.GetValue<string>();

    public static string? OptStr(this JsonObject o, string key) => o[key]?.GetValue<string>();

    public static bool Bool(this JsonObject o, string key, bool fallback = false) => o[key]?.GetValue<bool>() ?? fallback;

    public static bool? OptBool(this JsonObject o, string key) => o[key]?.GetValue<bool>();

    public static ulong U64(this JsonObject o, string key, ulong fallback = 0) => o[key]?.GetValue<ulong>() ?? fallback;

    public static ulong? OptU64(this JsonObject o, string key) => o[key]?.GetValue<ulong>();

    public static JsonNode? Clone(this JsonObject o, string key) => o[key]?.DeepClone();
}
