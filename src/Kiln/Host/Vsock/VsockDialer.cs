// Host-to-guest connections over Firecracker's hybrid vsock (docs/vsock.md): connect to uds_path, write
// `CONNECT <port>\n`, read `OK <host port>\n`, and the socket is the guest's. Firecracker closes the connection when no
// guest process listens on the port, and does not answer at all until the guest runs; both are normal while a guest
// boots, so the dialer retries them until its deadline.
using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Net.Sockets;
using Kiln.Api;

namespace Kiln.Host.Vsock;

/// <summary>Opens host-to-guest vsock connections through one Firecracker vsock device.</summary>
public sealed class VsockDialer
{
    // "OK 4294967295\n" is 14 bytes; anything longer without a newline is not an acknowledgement.
    private const int MaxAckLength = 32;
    private readonly VsockDialerOptions _options;

    /// <summary>A dialer for the vsock device whose <c>uds_path</c> is <paramref name="udsPath"/>.</summary>
    /// <exception cref="ArgumentException">The path cannot be a Unix socket path.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option out of range (named).</exception>
    public VsockDialer(string udsPath, VsockDialerOptions? options = null)
    {
        UnixSocketPath.Validate(udsPath);
        _options = options ?? new VsockDialerOptions();
        _options.Validate();
        UdsPath = udsPath;
    }

    /// <summary>Firecracker's <c>uds_path</c>.</summary>
    public string UdsPath { get; }

    /// <summary>
    /// Connects to a guest process listening on vsock <paramref name="port"/>, retrying while the VMM or the guest
    /// service is not there yet (see <see cref="VsockDialerOptions"/>).
    /// </summary>
    /// <returns>The connection; the caller disposes it.</returns>
    /// <exception cref="VsockConnectException">No connection within the deadline, or a malformed acknowledgement.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<VsockStream> ConnectAsync(uint port, CancellationToken cancellationToken = default)
    {
        using var deadline = new CancellationTokenSource(_options.ConnectTimeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var attempts = 0;
        (VsockConnectFailure Failure, string Detail, Exception? Error)? lastAnswer = null;
        while (true)
        {
            attempts++;
            var (stream, failure, detail, error) = await TryConnectAsync(port, linked.Token, deadline.Token, cancellationToken).ConfigureAwait(false);
            if (stream is not null)
                return stream;
            cancellationToken.ThrowIfCancellationRequested();
            // An attempt the overall deadline cut short says nothing about the guest; the last attempt that got an
            // answer (refused, no socket) does, so that is what the caller is told.
            if (deadline.IsCancellationRequested && failure == VsockConnectFailure.NoAcknowledgement && lastAnswer is { } answered)
                (failure, detail, error) = answered;
            else
                lastAnswer = (failure, detail, error);
            if (failure == VsockConnectFailure.BadAcknowledgement || !_options.RetryWhileBooting || deadline.IsCancellationRequested)
                throw new VsockConnectException(UdsPath, port, failure, attempts, detail, error);
            try
            {
                await Task.Delay(_options.RetryInterval, _options.TimeProvider, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new VsockConnectException(UdsPath, port, failure, attempts, detail, error);
            }
        }
    }

    private async Task<(VsockStream? Stream, VsockConnectFailure Failure, string Detail, Exception? Error)> TryConnectAsync(
        uint port, CancellationToken linked, CancellationToken deadline, CancellationToken caller)
    {
        using var attempt = new CancellationTokenSource(_options.AttemptTimeout, _options.TimeProvider);
        using var token = CancellationTokenSource.CreateLinkedTokenSource(linked, attempt.Token);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(UdsPath), token.Token).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                return (null, VsockConnectFailure.SocketUnavailable, e.Message, e);
            }

            await socket.SendAsync(CommandFor(port), SocketFlags.None, token.Token).ConfigureAwait(false);
            var (hostPort, failure, detail) = await ReadAcknowledgementAsync(socket, token.Token).ConfigureAwait(false);
            if (hostPort is null)
                return (null, failure, detail, null);
            var stream = new VsockStream(socket, port, hostPort);
            socket = null;
            return (stream, default, "", null);
        }
        catch (OperationCanceledException) when (!caller.IsCancellationRequested)
        {
            var timeout = deadline.IsCancellationRequested ? _options.ConnectTimeout : _options.AttemptTimeout;
            return (null, VsockConnectFailure.NoAcknowledgement, $"no OK within {timeout.TotalMilliseconds:0} ms", null);
        }
        catch (SocketException e)
        {
            // Reset mid-handshake: Firecracker dropped the connection, as it does for a port nobody listens on.
            return (null, VsockConnectFailure.Refused, e.Message, e);
        }
        finally
        {
            socket?.Dispose();
        }
    }

    private static byte[] CommandFor(uint port) => System.Text.Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"CONNECT {port}\n"));

    // Reads exactly the acknowledgement line and nothing after it: a guest may write at once, and those bytes belong
    // to the returned stream. Peeking first finds the newline without a syscall per byte.
    private static async Task<(uint? HostPort, VsockConnectFailure Failure, string Detail)> ReadAcknowledgementAsync(Socket socket, CancellationToken ct)
    {
        var line = ArrayPool<byte>.Shared.Rent(MaxAckLength);
        try
        {
            var length = 0;
            while (true)
            {
                var room = line.AsMemory(length, MaxAckLength - length);
                var peeked = await socket.ReceiveAsync(room, SocketFlags.Peek, ct).ConfigureAwait(false);
                if (peeked == 0)
                    return (null, VsockConnectFailure.Refused, "Firecracker closed the connection without OK (no guest process listens on the port)");
                var newline = room.Span[..peeked].IndexOf((byte)'\n');
                var take = newline >= 0 ? newline + 1 : peeked;
                var taken = 0;
                while (taken < take)
                    taken += await socket.ReceiveAsync(line.AsMemory(length + taken, take - taken), SocketFlags.None, ct).ConfigureAwait(false);
                length += take;
                if (newline >= 0)
                    return Parse(line.AsSpan(0, length));
                if (length == MaxAckLength)
                    return (null, VsockConnectFailure.BadAcknowledgement, $"no newline in the first {MaxAckLength} bytes");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(line);
        }
    }

    private static (uint? HostPort, VsockConnectFailure Failure, string Detail) Parse(ReadOnlySpan<byte> line)
    {
        if (line.StartsWith("OK "u8) && Utf8Parser.TryParse(line[3..^1], out uint hostPort, out var used) && used == line.Length - 4)
            return (hostPort, default, "");
        return (null, VsockConnectFailure.BadAcknowledgement, $"expected 'OK <port>', got '{System.Text.Encoding.ASCII.GetString(line).TrimEnd('\n')}'");
    }
}
