// Writes frames to a byte stream. Several producers share one connection (a process's stdout and stderr pumps, the
// exit report), so every frame goes out whole under one lock, and in the order the producers handed them over.
using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json.Serialization.Metadata;

namespace Kiln.Agent.Protocol;

/// <summary>Writes whole frames to one connection; safe for concurrent callers.</summary>
internal sealed class FrameWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly SemaphoreSlim _lock = new(1, 1);

    public FrameWriter(Stream stream) => _stream = stream;

    /// <summary>Writes one frame.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The payload exceeds the type's limit (a bug on this side).</exception>
    public async ValueTask WriteAsync(FrameType type, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var max = FrameLimits.MaxPayload(type);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payload.Length, max);

        var size = FrameLimits.HeaderSize + payload.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)payload.Length);
            buffer[4] = (byte)type;
            buffer[5] = buffer[6] = buffer[7] = 0;
            payload.Span.CopyTo(buffer.AsSpan(FrameLimits.HeaderSize));
            await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await _stream.WriteAsync(buffer.AsMemory(0, size), cancellationToken).ConfigureAwait(false);
                await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _lock.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Writes an empty frame (<see cref="FrameType.Ok"/>, end of a stream, …).</summary>
    public ValueTask WriteAsync(FrameType type, CancellationToken cancellationToken) =>
        WriteAsync(type, ReadOnlyMemory<byte>.Empty, cancellationToken);

    /// <summary>Writes a JSON message frame.</summary>
    /// <exception cref="AgentProtocolException">The message is larger than the type allows (argv too long, …).</exception>
    public ValueTask WriteMessageAsync<T>(FrameType type, T message, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        var payload = Messages.Encode(type, message, typeInfo);
        return WriteAsync(type, payload, cancellationToken);
    }

    /// <summary>Writes <paramref name="data"/> as as many frames of <paramref name="type"/> as it takes (never an empty one).</summary>
    public async ValueTask WriteChunkedAsync(FrameType type, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var n = Math.Min(data.Length, FrameLimits.MaxChunk);
            await WriteAsync(type, data[..n], cancellationToken).ConfigureAwait(false);
            data = data[n..];
        }
    }

    public void Dispose() => _lock.Dispose();
}
