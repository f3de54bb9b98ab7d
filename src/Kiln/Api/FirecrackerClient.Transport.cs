// The transport under FirecrackerClient: a lean HTTP/1.1 client on one kept Unix socket. Firecracker handles one
// request at a time, so requests wait their turn on a gate and share one set of buffers; that also keeps a call
// to a few hundred bytes of allocation (the answer's objects and the async state). A batch of requests of one kind
// may be pipelined (written together, answers read in order): micro_http parses every request a read brings.
using System.Buffers;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kiln.Api;

public sealed partial class FirecrackerClient
{
    private const int MaxHeadBytes = 64 * 1024;
    private const int MaxBodyBytes = 16 * 1024 * 1024;

    private static readonly Action<object?> CancelDeadline = static state => ((CancellationTokenSource)state!).Cancel();

    private static ReadOnlySpan<byte> RequestLineTail => " HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"u8;
    private static ReadOnlySpan<byte> ContentTypeJson => "Content-Type: application/json\r\n"u8;
    private static ReadOnlySpan<byte> ContentLengthName => "Content-Length: "u8;
    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    private readonly UnixDomainSocketEndPoint _endPoint;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _body = new(1024);
    private readonly Utf8JsonWriter _json;
    private byte[] _send = new byte[1024];
    private byte[] _receive = new byte[4096];
    private Socket? _socket;
    private CancellationTokenSource _deadline;
    private volatile bool _disposed;

    /// <summary>An answer in <c>_receive</c>: its status, its body's place, and how many bytes the reads brought (more
    /// than the answer when pipelined answers follow it).</summary>
    private readonly record struct Response(int StatusCode, int BodyStart, int BodyLength, int Received)
    {
        public int End => BodyStart + BodyLength;
    }

    /// <summary>Sends a request with a JSON body and expects a success without content.</summary>
    private async Task SendAsync<TRequest>(ApiOperation op, string? id, TRequest body, JsonTypeInfo<TRequest> requestType, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (op.HasId)
            ValidateId(id);
        await EnterAsync(cancellationToken);
        try
        {
            _body.ResetWrittenCount();
            _json.Reset(_body);
            JsonSerializer.Serialize(_json, body, requestType);
            var response = await ExchangeAsync(op, id, _body.WrittenCount, cancellationToken);
            EnsureSuccess(op, id, response);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Sends a request without a body and expects a success without content.</summary>
    private async Task SendAsync(ApiOperation op, string? id, CancellationToken cancellationToken)
    {
        if (op.HasId)
            ValidateId(id);
        await EnterAsync(cancellationToken);
        try
        {
            var response = await ExchangeAsync(op, id, 0, cancellationToken);
            EnsureSuccess(op, id, response);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Sends one request per body, pipelined: all are written at once and the answers read in order, each checked as
    /// <see cref="SendAsync{TRequest}"/> checks one. Firecracker's HTTP server (micro_http) parses every request a read
    /// of the connection brings and its API thread serves them one by one, in order; so this is the same sequence of
    /// requests at one round trip instead of one per request. The first refusal is thrown; the requests after it were
    /// sent too and may have taken effect (the connection is dropped, their answers unread).
    /// </summary>
    private async Task SendPipelinedAsync<TRequest>(ApiOperation op, IReadOnlyList<TRequest> bodies, Func<TRequest, string?> idOf,
        JsonTypeInfo<TRequest> requestType, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bodies);
        var ids = new string?[bodies.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            ArgumentNullException.ThrowIfNull(bodies[i], $"{nameof(bodies)}[{i}]");
            ids[i] = idOf(bodies[i]);
            if (op.HasId)
                ValidateId(ids[i]);
        }
        if (ids.Length == 0)
            return;
        await EnterAsync(cancellationToken);
        try
        {
            var length = 0;
            for (var i = 0; i < ids.Length; i++)
            {
                _body.ResetWrittenCount();
                _json.Reset(_body);
                JsonSerializer.Serialize(_json, bodies[i], requestType);
                length = WriteRequest(op, ids[i], _body.WrittenCount, length);
            }
            var response = await TransmitAsync(op, ids[0], ids, length, cancellationToken);
            EnsureSuccess(op, ids[^1], response);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Sends a request without a body and reads a JSON answer.</summary>
    private async Task<TResponse> GetAsync<TResponse>(ApiOperation op, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken);
        try
        {
            var response = await ExchangeAsync(op, null, 0, cancellationToken);
            EnsureSuccess(op, null, response);
            var json = _receive.AsSpan(response.BodyStart, response.BodyLength);
            TResponse? value;
            try
            {
                value = JsonSerializer.Deserialize(json, responseType);
            }
            catch (JsonException ex)
            {
                throw Protocol(op, null, $"its answer is not a valid {typeof(TResponse).Name}: {ex.Message}", json, ex);
            }
            return value ?? throw Protocol(op, null, $"its answer is not a {typeof(TResponse).Name}", json);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>What a failed <see cref="ConnectAsync"/> names as its operation (it sends none).</summary>
    private static readonly ApiOperation OpenConnection = new("connect", "before", "any request");

    /// <summary>
    /// Opens the connection the next request will use, without sending one (nothing when it is open): whoever knows
    /// its next request learns that Firecracker listens without spending a probe request (a restore's load is its
    /// first request). Connecting to a Unix socket that listens succeeds at once, before Firecracker accepts.
    /// </summary>
    /// <exception cref="FirecrackerSocketNotFoundException">The socket file does not exist.</exception>
    /// <exception cref="FirecrackerConnectionRefusedException">The socket exists but nothing listens (yet) on it.</exception>
    /// <exception cref="FirecrackerConnectionException">The connect failed otherwise.</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        try
        {
            await ConnectedSocketAsync(OpenConnection, null, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// As <see cref="ConnectAsync"/>, for a readiness wait that expects the socket to be missing or refused for a
    /// while: those two come back as <see langword="false"/> instead of an exception (a thrown and caught exception
    /// per retry was a measurable share of a start's CPU while a descheduled VMM had bound its socket but not yet
    /// listened). Anything else still throws.
    /// </summary>
    /// <returns>Whether the connection is open (kept for the next request).</returns>
    /// <exception cref="FirecrackerConnectionException">The connect failed otherwise than missing or refused.</exception>
    internal async ValueTask<bool> TryConnectAsync(CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken);
        try
        {
            if (_socket is not null)
                return true;
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            SocketError error;
            try
            {
                error = await ConnectWithoutThrowingAsync(socket, _endPoint, cancellationToken);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            if (error == SocketError.Success && !_disposed)
            {
                _socket = socket;
                return true;
            }
            socket.Dispose();
            ObjectDisposedException.ThrowIf(_disposed, this);
            cancellationToken.ThrowIfCancellationRequested();
            // ENOENT (AddressNotAvailable on Linux): not bound yet. ECONNREFUSED: bound, not listening yet.
            // EAGAIN (TryAgain): listening, its backlog full for now.
            if (error is SocketError.AddressNotAvailable or SocketError.ConnectionRefused or SocketError.TryAgain)
                return false;
            var operation = OpenConnection.Describe(null);
            throw new FirecrackerConnectionException(
                $"Cannot connect to the Firecracker API socket {SocketPath} for {operation}: {error}.",
                SocketPath, operation, new SocketException((int)error));
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>connect(2) through SocketAsyncEventArgs, whose outcome is an error code rather than an exception.</summary>
    private static async ValueTask<SocketError> ConnectWithoutThrowingAsync(Socket socket, UnixDomainSocketEndPoint endPoint, CancellationToken cancellationToken)
    {
        using var args = new SocketAsyncEventArgs { RemoteEndPoint = endPoint };
        // A Unix socket's connect completes at once: connected, missing or refused. Only the pending case needs a task.
        TaskCompletionSource? pending = null;
        args.Completed += (_, _) => pending!.TrySetResult();
        pending = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!socket.ConnectAsync(args))
            return args.SocketError;
        using (cancellationToken.UnsafeRegister(static state => Socket.CancelConnectAsync((SocketAsyncEventArgs)state!), args))
            await pending.Task.ConfigureAwait(false);
        return args.SocketError;
    }

    private Task EnterAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _gate.WaitAsync(cancellationToken);
    }

    private static void ValidateId(string? id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
    }

    private void EnsureSuccess(ApiOperation op, string? id, Response response)
    {
        if (response.StatusCode is >= 200 and < 300)
            return;
        var body = _receive.AsSpan(response.BodyStart, response.BodyLength);
        var fault = FaultMessage.From(body);
        var operation = op.Describe(id);
        var what = fault ?? (body.IsEmpty ? "(no body)" : HttpResponseHead.Excerpt(body));
        throw new FirecrackerApiException(
            $"Firecracker at {SocketPath} refused {operation} with status {response.StatusCode}: {what}",
            SocketPath, operation, response.StatusCode, fault);
    }

    /// <summary>One request and its answer on the kept connection; the caller holds the gate.</summary>
    private ValueTask<Response> ExchangeAsync(ApiOperation op, string? id, int bodyLength, CancellationToken cancellationToken) =>
        TransmitAsync(op, id, null, WriteRequest(op, id, bodyLength, 0), cancellationToken);

    /// <summary>
    /// Sends the <paramref name="length"/> bytes of <c>_send</c> (the request for <paramref name="id"/>, or with
    /// <paramref name="pipelined"/> one request per id there, <paramref name="id"/> the first) and reads the answers
    /// in order. Each answer but the last must be a success (<see cref="EnsureSuccess"/>); the last is returned. Each
    /// answer has the request deadline, counted from the answer before it (its turn on the connection). The caller
    /// holds the gate.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Response> TransmitAsync(ApiOperation op, string? id, string?[]? pipelined, int length, CancellationToken cancellationToken)
    {
        var timeout = op.IsSlow ? Options.SnapshotTimeout : Options.RequestTimeout;
        var deadline = ArmDeadline(timeout);
        var token = deadline.Token;
        var registration = cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(CancelDeadline, deadline) : default;
        var started = _logger.IsEnabled(LogLevel.Debug) ? _time.GetTimestamp() : 0;
        try
        {
            var reused = _socket is not null;
            var socket = await ConnectedSocketAsync(op, id, token);
            var sent = 0;
            while (sent < length)
            {
                int n;
                try
                {
                    n = await socket.SendAsync(_send.AsMemory(sent, length - sent), SocketFlags.None, token);
                }
                catch (SocketException ex) when (reused && sent == 0 && IsPeerGone(ex))
                {
                    // A Unix socket refuses a write at once (EPIPE) when the peer has closed, so nothing of this
                    // request reached Firecracker: the kept connection had been closed after its last answer (or
                    // Firecracker restarted on the same path). Retrying on a new connection is safe.
                    DropConnection();
                    reused = false;
                    socket = await ConnectedSocketAsync(op, id, token);
                    continue;
                }
                sent += n;
            }
            var answers = pipelined?.Length ?? 1;
            var response = await ReadResponseAsync(socket, op, id, 0, more: answers > 1, token);
            for (var i = 1; i < answers; i++)
            {
                // The next request's turn starts with this answer: its deadline counts from now.
                if (timeout != Timeout.InfiniteTimeSpan)
                    deadline.CancelAfter(timeout);
                if (started != 0)
                    LogAnswered(op, id, response.StatusCode, started);
                EnsureSuccess(op, id, response);
                if (_socket is null)
                    throw Closed(op, pipelined![i], 0); // it said Connection: close before answering the rest
                // The bytes after this answer are the next one's (or its start): move them to the front.
                var carried = response.Received - response.End;
                Buffer.BlockCopy(_receive, response.End, _receive, 0, carried);
                id = pipelined![i];
                started = started != 0 ? _time.GetTimestamp() : 0;
                response = await ReadResponseAsync(socket, op, id, carried, more: i + 1 < answers, token);
            }
            if (started != 0)
                LogAnswered(op, id, response.StatusCode, started);
            return response;
        }
        catch (Exception ex) when (token.IsCancellationRequested && ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            DropConnection();
            ObjectDisposedException.ThrowIf(_disposed, this);
            var operation = op.Describe(id);
            if (cancellationToken.IsCancellationRequested)
                throw new OperationCanceledException($"{operation} was cancelled; the connection to {SocketPath} was dropped.", ex, cancellationToken);
            throw new FirecrackerTimeoutException(
                $"Firecracker at {SocketPath} did not answer {operation} within {timeout.TotalSeconds:0.###} s; " +
                "the process may be hung or stopped (SIGSTOP).",
                SocketPath, operation, timeout, ex);
        }
        catch (SocketException ex)
        {
            DropConnection();
            ObjectDisposedException.ThrowIf(_disposed, this);
            var operation = op.Describe(id);
            throw IsPeerGone(ex)
                ? new FirecrackerConnectionClosedException(
                    $"Firecracker at {SocketPath} closed the connection during {operation} ({ex.SocketErrorCode}); " +
                    "the process has probably exited, and whether the request took effect is unknown.",
                    SocketPath, operation, ex)
                : new FirecrackerConnectionException(
                    $"Talking to Firecracker at {SocketPath} failed during {operation}: {ex.Message} ({ex.SocketErrorCode}).",
                    SocketPath, operation, ex);
        }
        catch (ObjectDisposedException) when (_disposed)
        {
            throw new ObjectDisposedException(nameof(FirecrackerClient), $"The client for {SocketPath} was disposed during {op.Describe(id)}.");
        }
        catch
        {
            DropConnection();
            throw;
        }
        finally
        {
            registration.Dispose();
            // Stop the clock so an idle client's timer cannot fire and spoil the reusable source.
            deadline.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    private static bool IsPeerGone(SocketException ex) =>
        ex.SocketErrorCode is SocketError.Shutdown or SocketError.ConnectionReset or SocketError.ConnectionAborted;

    private CancellationTokenSource ArmDeadline(TimeSpan timeout)
    {
        if (!_deadline.TryReset())
        {
            _deadline.Dispose();
            _deadline = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        }
        if (timeout != Timeout.InfiniteTimeSpan)
            _deadline.CancelAfter(timeout);
        return _deadline;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Socket> ConnectedSocketAsync(ApiOperation op, string? id, CancellationToken token)
    {
        if (_socket is { } kept)
            return kept;

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(_endPoint, token);
        }
        catch (SocketException ex) when (!token.IsCancellationRequested)
        {
            socket.Dispose();
            var operation = op.Describe(id);
            // ENOENT surfaces as AddressNotAvailable on Linux; look at the file to tell the cases apart.
            if (ex.SocketErrorCode == SocketError.AddressNotAvailable || !File.Exists(SocketPath))
            {
                throw new FirecrackerSocketNotFoundException(
                    $"No Firecracker API socket at {SocketPath} for {operation}: the file does not exist " +
                    "(Firecracker not started yet, or already gone).",
                    SocketPath, operation, ex);
            }
            if (ex.SocketErrorCode == SocketError.ConnectionRefused)
            {
                throw new FirecrackerConnectionRefusedException(
                    $"Nothing listens on the Firecracker API socket {SocketPath} ({operation} was refused): " +
                    "probably a stale socket file left by a Firecracker that died.",
                    SocketPath, operation, ex);
            }
            throw new FirecrackerConnectionException(
                $"Cannot connect to the Firecracker API socket {SocketPath} for {operation}: {ex.Message} ({ex.SocketErrorCode}).",
                SocketPath, operation, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        if (_disposed)
        {
            // Dispose ran while connecting: do not keep a socket nobody will close.
            socket.Dispose();
            throw new ObjectDisposedException(nameof(FirecrackerClient));
        }
        _socket = socket;
        return socket;
    }

    /// <summary>Writes one request into <c>_send</c> at <paramref name="offset"/> (after those before it); returns its end.</summary>
    private int WriteRequest(ApiOperation op, string? id, int bodyLength, int offset)
    {
        var escapedId = id is null ? null : Uri.EscapeDataString(id);
        var needed = offset + op.RequestLinePrefix.Length + (escapedId?.Length ?? 0) + RequestLineTail.Length + 64 + bodyLength;
        if (_send.Length < needed)
            Array.Resize(ref _send, Math.Max(needed, _send.Length * 2));

        var span = _send.AsSpan();
        var pos = Append(span, offset, op.RequestLinePrefix);
        if (escapedId is not null)
            pos += Encoding.ASCII.GetBytes(escapedId, span[pos..]);
        pos = Append(span, pos, RequestLineTail);
        if (op.SendsContentLength)
        {
            if (bodyLength > 0)
                pos = Append(span, pos, ContentTypeJson);
            pos = Append(span, pos, ContentLengthName);
            bodyLength.TryFormat(span[pos..], out var written, default, CultureInfo.InvariantCulture);
            pos = Append(span, pos + written, Crlf);
        }
        pos = Append(span, pos, Crlf);
        if (bodyLength > 0)
            pos = Append(span, pos, _body.WrittenSpan);
        return pos;
    }

    private static int Append(Span<byte> destination, int position, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(destination[position..]);
        return position + bytes.Length;
    }

    /// <summary>
    /// Reads one answer into <c>_receive</c>, whose first <paramref name="carried"/> bytes were read with the answer
    /// before it. With <paramref name="more"/>, answers to pipelined requests follow on the connection: bytes after
    /// this answer are theirs, and an answer whose body runs to the end of the connection cannot be one of them.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Response> ReadResponseAsync(Socket socket, ApiOperation op, string? id, int carried, bool more, CancellationToken token)
    {
        var count = carried;
        int headEnd;
        while ((headEnd = HttpResponseHead.FindEnd(_receive.AsSpan(0, count))) < 0)
        {
            if (count == _receive.Length)
            {
                if (count >= MaxHeadBytes)
                    throw Protocol(op, id, $"its answer has no end of headers within {MaxHeadBytes} bytes", _receive.AsSpan(0, count));
                Array.Resize(ref _receive, count * 2);
            }
            var n = await socket.ReceiveAsync(_receive.AsMemory(count), SocketFlags.None, token);
            if (n == 0)
                throw Closed(op, id, count);
            count += n;
        }

        if (!HttpResponseHead.TryParse(_receive.AsSpan(0, headEnd), out var head, out var error))
            throw Protocol(op, id, error!, _receive.AsSpan(0, count));

        var bodyStart = headEnd + 4;
        int bodyLength;
        var keep = !head.ConnectionClose;
        if (head.HasNoBody)
        {
            bodyLength = 0;
        }
        else if (head.ContentLength is { } contentLength)
        {
            if (contentLength > MaxBodyBytes)
                throw Protocol(op, id, $"its answer announces {contentLength} bytes, more than the {MaxBodyBytes} Kiln accepts", _receive.AsSpan(0, count));
            var total = bodyStart + contentLength;
            if (_receive.Length < total)
                Array.Resize(ref _receive, total);
            while (count < total)
            {
                var n = await socket.ReceiveAsync(_receive.AsMemory(count, total - count), SocketFlags.None, token);
                if (n == 0)
                    throw Closed(op, id, count);
                count += n;
            }
            bodyLength = contentLength;
        }
        else
        {
            if (more)
                throw Protocol(op, id, "its answer has no Content-Length while answers to later requests follow it", _receive.AsSpan(0, count));
            // No length: the body runs to the end of the connection (HTTP/1.1 close-delimited).
            keep = false;
            while (true)
            {
                if (count == _receive.Length)
                {
                    if (count - bodyStart >= MaxBodyBytes)
                        throw Protocol(op, id, $"its answer runs past the {MaxBodyBytes} bytes Kiln accepts", _receive.AsSpan(0, 256));
                    Array.Resize(ref _receive, count * 2);
                }
                var n = await socket.ReceiveAsync(_receive.AsMemory(count), SocketFlags.None, token);
                if (n == 0)
                    break;
                count += n;
            }
            bodyLength = count - bodyStart;
        }

        // Bytes after a lone answer would be read as the next request's answer; a fresh connection is safer.
        if (!keep || (!more && count > bodyStart + bodyLength))
            DropConnection();
        return new Response(head.StatusCode, bodyStart, bodyLength, count);
    }

    private FirecrackerConnectionClosedException Closed(ApiOperation op, string? id, int received)
    {
        var operation = op.Describe(id);
        var message = received == 0
            ? $"Firecracker at {SocketPath} closed the connection without answering {operation}; the process has " +
              "probably exited, and whether the request took effect is unknown."
            : $"Firecracker at {SocketPath} closed the connection in the middle of its answer to {operation} after " +
              $"{received} bytes: {HttpResponseHead.Excerpt(_receive.AsSpan(0, received))}";
        return new FirecrackerConnectionClosedException(message, SocketPath, operation);
    }

    private FirecrackerProtocolException Protocol(ApiOperation op, string? id, string problem, ReadOnlySpan<byte> received, Exception? inner = null)
    {
        var operation = op.Describe(id);
        var excerpt = HttpResponseHead.Excerpt(received);
        return new FirecrackerProtocolException(
            $"Firecracker at {SocketPath} answered {operation} with something Kiln cannot read ({problem}): {excerpt}",
            SocketPath, operation, excerpt, inner);
    }

    private void DropConnection()
    {
        var socket = Interlocked.Exchange(ref _socket, null);
        socket?.Dispose();
    }

    private static Utf8JsonWriter CreateWriter(ArrayBufferWriter<byte> buffer) =>
        // Firecracker reads standard JSON escapes; the relaxed encoder only keeps paths such as "a+b" readable in logs.
        new(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true });

    private void LogAnswered(ApiOperation op, string? id, int statusCode, long started)
    {
        if (!_logger.IsEnabled(LogLevel.Debug))
            return;
        var path = op.HasId ? op.Path + id : op.Path;
        var elapsedMs = _time.GetElapsedTime(started).TotalMilliseconds;
        Log.Answered(_logger, op.Method, path, statusCode, elapsedMs);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Firecracker answered {Method} {Path} with {StatusCode} in {ElapsedMs:0.###} ms")]
        public static partial void Answered(ILogger logger, string method, string path, int statusCode, double elapsedMs);
    }

    private static ILogger LoggerOf(FirecrackerClientOptions options) => options.Logger ?? NullLogger.Instance;
}
