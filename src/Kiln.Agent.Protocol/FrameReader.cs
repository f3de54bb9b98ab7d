// Reads frames off a byte stream. Every bound is checked on the header, before a byte of payload is allocated or read,
// so a hostile or broken peer costs at most one MaxPayload buffer and can only end in AgentProtocolException.
using System.Buffers;
using System.Buffers.Binary;

namespace Kiln.Agent.Protocol;

/// <summary>Reads frames from one connection; not thread-safe (one reader per connection).</summary>
internal sealed class FrameReader : IDisposable
{
    private readonly Stream _stream;
    private readonly byte[] _header = new byte[FrameLimits.HeaderSize];
    private byte[]? _payload;

    public FrameReader(Stream stream) => _stream = stream;

    /// <summary>
    /// The next frame, or null when the peer closed the stream cleanly between frames. The returned payload is only
    /// valid until the next call.
    /// </summary>
    /// <exception cref="AgentProtocolException">A truncated, oversized, unknown or malformed frame.</exception>
    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        var got = await FillAsync(_header, cancellationToken).ConfigureAwait(false);
        if (got == 0)
            return null;
        if (got < _header.Length)
            throw new AgentProtocolException($"The stream ended inside a frame header ({got} of {FrameLimits.HeaderSize} bytes).");

        var length = BinaryPrimitives.ReadUInt32BigEndian(_header);
        var typeByte = _header[4];
        if (!FrameLimits.IsKnown(typeByte))
            throw new AgentProtocolException($"Unknown frame type {typeByte}.");
        if (_header[5] != 0 || _header[6] != 0 || _header[7] != 0)
            throw new AgentProtocolException("A frame header's reserved bytes are not zero.");

        var type = (FrameType)typeByte;
        var max = FrameLimits.MaxPayload(type);
        if (length > (uint)max)
            throw new AgentProtocolException($"A {type} frame of {length} bytes exceeds its limit of {max} bytes.");
        if (length == 0)
            return new Frame(type, ReadOnlyMemory<byte>.Empty);

        if (_payload is null || _payload.Length < length)
        {
            ReturnBuffer();
            _payload = ArrayPool<byte>.Shared.Rent((int)length);
        }

        var memory = _payload.AsMemory(0, (int)length);
        got = await FillAsync(memory, cancellationToken).ConfigureAwait(false);
        if (got < length)
            throw new AgentProtocolException($"The stream ended inside a {type} frame ({got} of {length} payload bytes).");
        return new Frame(type, memory);
    }

    /// <summary>The next frame, insisting that there is one.</summary>
    /// <exception cref="AgentProtocolException">The stream ended, or a bad frame.</exception>
    public async ValueTask<Frame> ReadRequiredAsync(CancellationToken cancellationToken) =>
        await ReadAsync(cancellationToken).ConfigureAwait(false)
        ?? throw new AgentProtocolException("The peer closed the connection before the operation finished.");

    public void Dispose() => ReturnBuffer();

    private void ReturnBuffer()
    {
        if (_payload is not null)
            ArrayPool<byte>.Shared.Return(_payload);
        _payload = null;
    }

    // Reads until the buffer is full or the stream ends; returns the count read.
    private async ValueTask<int> FillAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await _stream.ReadAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
            if (n == 0)
                break;
            total += n;
        }

        return total;
    }
}
