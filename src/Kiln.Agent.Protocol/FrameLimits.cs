namespace Kiln.Agent.Protocol;

/// <summary>The protocol's constants: its version, the header layout and every size bound.</summary>
internal static class FrameLimits
{
    /// <summary>The protocol version this build speaks; a peer with another version is refused at <see cref="FrameType.Hello"/>.</summary>
    public const int Version = 1;

    /// <summary>Header: 4-byte big-endian payload length, 1-byte type, 3 reserved bytes that must be zero.</summary>
    public const int HeaderSize = 8;

    /// <summary>Largest payload of any stream frame (data, stdin, stdout, stderr) and of control messages.</summary>
    public const int MaxChunk = 64 * 1024;

    /// <summary>Largest payload of an <see cref="FrameType.Exec"/> request: argv and environment together.</summary>
    public const int MaxExecRequest = 1024 * 1024;

    /// <summary>The bound a reader enforces for <paramref name="type"/> before it allocates anything.</summary>
    public static int MaxPayload(FrameType type) => type == FrameType.Exec ? MaxExecRequest : MaxChunk;

    /// <summary>Whether <paramref name="value"/> is a frame type this version knows.</summary>
    public static bool IsKnown(byte value) => Enum.IsDefined((FrameType)value);
}
