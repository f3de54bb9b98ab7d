// The JSON messages carried by control frames. Field names are camelCase; absent optional fields are omitted. A
// receiver ignores fields it does not know, so later versions may add fields without a version bump.
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Kiln.Agent.Protocol;

/// <summary>Version handshake, sent first by each side.</summary>
internal sealed record HelloMessage(int Version, string? Agent = null);

/// <summary>Why an operation failed. <see cref="Code"/> is one of <see cref="ErrorCodes"/>.</summary>
internal sealed record ErrorMessage(string Code, string Message);

/// <summary>The agent's answer to a health call.</summary>
internal sealed record HealthMessage(string Agent, int Version, int Pid, bool IsInit, long UptimeMs);

/// <summary>A process to start.</summary>
internal sealed record ExecRequest(
    IReadOnlyList<string> Argv,
    IReadOnlyDictionary<string, string>? Env = null,
    string? WorkingDirectory = null,
    string? User = null,
    long? TimeoutMs = null,
    bool Stdin = false);

/// <summary>The process started with this PID (in the guest).</summary>
internal sealed record ExecStartedMessage(int Pid);

/// <summary>A signal for the process (and its process group).</summary>
internal sealed record SignalMessage(int Signal);

/// <summary>How the process ended: an exit code, or the signal that killed it; <see cref="TimedOut"/> when the agent killed it.</summary>
internal sealed record ExitMessage(int? ExitCode = null, int? Signal = null, bool TimedOut = false);

/// <summary>A request on one path.</summary>
internal sealed record PathRequest(string Path);

/// <summary>A file to write: its path, its permission bits (octal value as an integer) and whether to append.</summary>
internal sealed record FileWriteRequest(string Path, int Mode = 420, bool Append = false);

/// <summary>A path to remove; directories only with <see cref="Recursive"/> or when empty.</summary>
internal sealed record FileRemoveRequest(string Path, bool Recursive = false);

/// <summary>What a path is. <see cref="Kind"/>: "file", "directory", "symlink" or "other".</summary>
internal sealed record FileInfoMessage(string Path, string Kind, long Size, int Mode, long ModifiedUnixMs);

/// <summary>The error codes an <see cref="ErrorMessage"/> carries.</summary>
internal static class ErrorCodes
{
    public const string Protocol = "protocol";
    public const string Version = "version";
    public const string InvalidRequest = "invalid-request";
    public const string NotFound = "not-found";
    public const string PermissionDenied = "permission-denied";
    public const string ExecFailed = "exec-failed";
    public const string Io = "io";
    public const string Unsupported = "unsupported";
    public const string Internal = "internal";
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(HelloMessage))]
[JsonSerializable(typeof(ErrorMessage))]
[JsonSerializable(typeof(HealthMessage))]
[JsonSerializable(typeof(ExecRequest))]
[JsonSerializable(typeof(ExecStartedMessage))]
[JsonSerializable(typeof(SignalMessage))]
[JsonSerializable(typeof(ExitMessage))]
[JsonSerializable(typeof(PathRequest))]
[JsonSerializable(typeof(FileWriteRequest))]
[JsonSerializable(typeof(FileRemoveRequest))]
[JsonSerializable(typeof(FileInfoMessage))]
internal sealed partial class AgentJsonContext : JsonSerializerContext;

/// <summary>Encoding and decoding of message payloads, with every failure as <see cref="AgentProtocolException"/>.</summary>
internal static class Messages
{
    public static byte[] Encode<T>(FrameType type, T message, JsonTypeInfo<T> typeInfo)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(message, typeInfo);
        if (payload.Length > FrameLimits.MaxPayload(type))
            throw new AgentProtocolException($"A {type} message of {payload.Length} bytes exceeds its limit of {FrameLimits.MaxPayload(type)} bytes.");
        return payload;
    }

    /// <summary>Decodes a frame's JSON payload as <typeparamref name="T"/>, checking the frame's type first.</summary>
    /// <exception cref="AgentProtocolException">Another frame type, or a payload that is not a valid message.</exception>
    public static T Decode<T>(Frame frame, FrameType expected, JsonTypeInfo<T> typeInfo)
    {
        if (frame.Type != expected)
            throw Unexpected(frame, expected);
        try
        {
            return JsonSerializer.Deserialize(frame.Payload.Span, typeInfo)
                ?? throw new AgentProtocolException($"A {frame.Type} frame carries null.");
        }
        catch (JsonException e)
        {
            throw new AgentProtocolException($"A {frame.Type} frame carries a malformed message: {e.Message}", e);
        }
    }

    /// <summary>The exception for a frame that has no place at this point of the exchange.</summary>
    public static AgentProtocolException Unexpected(Frame frame, FrameType expected) =>
        new($"Expected a {expected} frame but got {frame.Type}.");
}
