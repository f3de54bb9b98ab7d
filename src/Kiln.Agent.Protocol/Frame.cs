namespace Kiln.Agent.Protocol;

/// <summary>One frame as read: its type and payload. The payload is only valid until the reader's next read.</summary>
internal readonly record struct Frame(FrameType Type, ReadOnlyMemory<byte> Payload)
{
    /// <summary>Whether this is a stream frame with an empty payload: the end of that stream.</summary>
    public bool IsEndOfStream => Payload.IsEmpty;
}
