// One agent connection: the stream, its frame reader and writer, and the version handshake. The client's Hello and
// its request go out back to back, so an operation costs one round trip, not two.
using Kiln.Agent.Protocol;

namespace Kiln.Agent;

internal sealed class AgentConnection : IAsyncDisposable
{
    private readonly Stream _stream;

    private AgentConnection(Stream stream)
    {
        _stream = stream;
        Reader = new FrameReader(stream);
        Writer = new FrameWriter(stream);
    }

    public FrameReader Reader { get; }

    public FrameWriter Writer { get; }

    /// <summary>Connects, sends Hello and <paramref name="requestType"/> with <paramref name="payload"/>, and checks the agent's Hello.</summary>
    public static async Task<AgentConnection> OpenAsync(AgentConnector connector, FrameType requestType, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var stream = await connector(cancellationToken).ConfigureAwait(false);
        var connection = new AgentConnection(stream);
        try
        {
            await connection.Writer.WriteMessageAsync(FrameType.Hello, new HelloMessage(FrameLimits.Version), AgentJsonContext.Default.HelloMessage, cancellationToken).ConfigureAwait(false);
            await connection.Writer.WriteAsync(requestType, payload, cancellationToken).ConfigureAwait(false);
            var hello = await connection.ReadAsync(cancellationToken).ConfigureAwait(false);
            var message = Messages.Decode(hello, FrameType.Hello, AgentJsonContext.Default.HelloMessage);
            if (message.Version != FrameLimits.Version)
                throw new AgentProtocolException($"The agent answered with protocol version {message.Version}; Kiln speaks {FrameLimits.Version}.");
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The next frame; an Error frame becomes <see cref="AgentOperationException"/>.</summary>
    public async ValueTask<Frame> ReadAsync(CancellationToken cancellationToken)
    {
        var frame = await Reader.ReadRequiredAsync(cancellationToken).ConfigureAwait(false);
        if (frame.Type == FrameType.Error)
        {
            var error = Messages.Decode(frame, FrameType.Error, AgentJsonContext.Default.ErrorMessage);
            throw new AgentOperationException(error.Code, error.Message);
        }

        return frame;
    }

    /// <summary>Reads the next frame and insists it is <paramref name="expected"/>.</summary>
    public async ValueTask<Frame> ExpectAsync(FrameType expected, CancellationToken cancellationToken)
    {
        var frame = await ReadAsync(cancellationToken).ConfigureAwait(false);
        if (frame.Type != expected)
            throw Messages.Unexpected(frame, expected);
        return frame;
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        Reader.Dispose();
        Writer.Dispose();
    }
}
