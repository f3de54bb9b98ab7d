// A command running in the guest, as streams. One pump reads the connection and routes frames: stdout and stderr to
// their own pipes (in order, each its own stream), the exit report to Exit. The pipes are deep (4 MiB) so that a
// caller reading only one stream for a while does not stall the other; beyond that, the agent is throttled, never
// the guest's memory or ours.
using System.IO.Pipelines;
using Kiln.Agent.Protocol;

namespace Kiln.Agent;

/// <summary>A command running in the guest. Disposing it before it exits kills it (its whole process group).</summary>
public sealed class ExecProcess : IAsyncDisposable
{
    private static readonly PipeOptions s_pipeOptions = new(pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20, useSynchronizationContext: false);

    private readonly AgentConnection _connection;
    private readonly Pipe _stdout = new(s_pipeOptions);
    private readonly Pipe _stderr = new(s_pipeOptions);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task<ExecExit> _exit;
    private int _disposed;

    private ExecProcess(AgentConnection connection, int pid)
    {
        _connection = connection;
        Pid = pid;
        StandardInput = new StdinStream(connection.Writer);
        StandardOutput = _stdout.Reader.AsStream();
        StandardError = _stderr.Reader.AsStream();
        _exit = PumpAsync(_stop.Token);
    }

    /// <summary>The command's PID in the guest.</summary>
    public int Pid { get; }

    /// <summary>The command's stdin (only when started with <c>standardInput: true</c>); dispose it to close stdin.</summary>
    public Stream StandardInput { get; }

    /// <summary>The command's stdout, ending when the command closes it.</summary>
    public Stream StandardOutput { get; }

    /// <summary>The command's stderr, ending when the command closes it.</summary>
    public Stream StandardError { get; }

    /// <summary>Completes when the command has ended and both output streams are complete.</summary>
    /// <exception cref="AgentProtocolException">The connection broke or carried a bad frame.</exception>
    public Task<ExecExit> Exit => _exit;

    internal static async Task<ExecProcess> StartAsync(AgentConnector connector, ExecRequest request, CancellationToken cancellationToken)
    {
        var payload = Messages.Encode(FrameType.Exec, request, AgentJsonContext.Default.ExecRequest);
        var connection = await AgentConnection.OpenAsync(connector, FrameType.Exec, payload, cancellationToken).ConfigureAwait(false);
        try
        {
            var started = await connection.ExpectAsync(FrameType.ExecStarted, cancellationToken).ConfigureAwait(false);
            var message = Messages.Decode(started, FrameType.ExecStarted, AgentJsonContext.Default.ExecStartedMessage);
            return new ExecProcess(connection, message.Pid);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Sends <paramref name="signal"/> to the command's process group.</summary>
    public async Task SignalAsync(int signal, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(signal, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(signal, 64);
        await _connection.Writer.WriteMessageAsync(FrameType.Signal, new SignalMessage(signal), AgentJsonContext.Default.SignalMessage, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>SIGKILLs the command's process group.</summary>
    public Task KillAsync(CancellationToken cancellationToken) => SignalAsync(9, cancellationToken);

    /// <summary>Closes the connection; the agent kills the command if it is still running.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        // Stop the pump first (its read holds the reader's buffer), then close: the agent kills a command still running.
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _exit.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // We cut the exchange ourselves.
        }

        await _connection.DisposeAsync().ConfigureAwait(false);

        _stop.Dispose();
    }

    private async Task<ExecExit> PumpAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        Exception? failure = null;
        try
        {
            while (true)
            {
                var frame = await _connection.ReadAsync(cancellationToken).ConfigureAwait(false);
                switch (frame.Type)
                {
                    case FrameType.Stdout:
                        await Route(_stdout.Writer, frame, cancellationToken).ConfigureAwait(false);
                        break;
                    case FrameType.Stderr:
                        await Route(_stderr.Writer, frame, cancellationToken).ConfigureAwait(false);
                        break;
                    case FrameType.Exit:
                        var exit = Messages.Decode(frame, FrameType.Exit, AgentJsonContext.Default.ExitMessage);
                        return new ExecExit(exit.ExitCode ?? (128 + (exit.Signal ?? 0)), exit.Signal, exit.TimedOut);
                    default:
                        throw Messages.Unexpected(frame, FrameType.Exit);
                }
            }
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            await _stdout.Writer.CompleteAsync(failure).ConfigureAwait(false);
            await _stderr.Writer.CompleteAsync(failure).ConfigureAwait(false);
        }
    }

    private static async ValueTask Route(PipeWriter writer, Frame frame, CancellationToken cancellationToken)
    {
        if (frame.IsEndOfStream)
        {
            await writer.CompleteAsync().ConfigureAwait(false);
            return;
        }

        await writer.WriteAsync(frame.Payload, cancellationToken).ConfigureAwait(false);
    }

    // Writes become Stdin frames; disposing sends the empty frame that closes the command's stdin.
    private sealed class StdinStream(FrameWriter writer) : Stream
    {
        private int _closed;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => _closed == 0;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(_closed != 0, this);
            await writer.WriteChunkedAsync(FrameType.Stdin, buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0)
            {
                try
                {
                    await writer.WriteAsync(FrameType.Stdin, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                    // The exec is over; its stdin is closed anyway.
                }
            }

            await base.DisposeAsync().ConfigureAwait(false);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && _closed == 0)
                DisposeAsync().AsTask().GetAwaiter().GetResult();
            base.Dispose(disposing);
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
