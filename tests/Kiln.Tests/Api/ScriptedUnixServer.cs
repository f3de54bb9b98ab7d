using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Kiln.Tests.Api;

/// <summary>A request as the scripted server read it.</summary>
internal sealed record RecordedRequest(string Method, string Target, string Version, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public string Line => $"{Method} {Target}";
}

/// <summary>
/// A tiny HTTP-ish server on a Unix socket inside the test process. Each accepted connection runs the test's
/// script, which reads requests and writes whatever bytes the test wants (good answers, garbage, nothing).
/// </summary>
internal sealed class ScriptedUnixServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly ConcurrentBag<Task> _connections = [];
    private int _accepted;
    private int _closed;

    private ScriptedUnixServer(string socketPath, Func<ServerConnection, CancellationToken, Task> script)
    {
        SocketPath = socketPath;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(16);
        _acceptLoop = AcceptLoopAsync(script);
    }

    public string SocketPath { get; }

    /// <summary>How many connections the server has accepted.</summary>
    public int AcceptedConnections => Volatile.Read(ref _accepted);

    /// <summary>How many connections the server has closed (its script ended).</summary>
    public int ClosedConnections => Volatile.Read(ref _closed);

    /// <summary>Every request read so far, in arrival order.</summary>
    public Channel<RecordedRequest> Requests { get; } = Channel.CreateUnbounded<RecordedRequest>();

    public static ScriptedUnixServer Start(string socketPath, Func<ServerConnection, CancellationToken, Task> script) => new(socketPath, script);

    /// <summary>A server that answers every request on every connection with <paramref name="respond"/>.</summary>
    public static ScriptedUnixServer Answering(string socketPath, Func<RecordedRequest, string> respond) =>
        Start(socketPath, async (connection, ct) =>
        {
            while (await connection.ReadRequestAsync(ct) is { } request)
                await connection.WriteAsync(respond(request), ct);
        });

    private async Task AcceptLoopAsync(Func<ServerConnection, CancellationToken, Task> script)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            Interlocked.Increment(ref _accepted);
            var connection = new ServerConnection(socket, this);
            _connections.Add(Task.Run(async () =>
            {
                try
                {
                    await script(connection, _stop.Token);
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                }
                catch (SocketException)
                {
                    // The client went away; the test looks at what the client saw.
                }
                finally
                {
                    connection.Close();
                    Interlocked.Increment(ref _closed);
                }
            }));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _acceptLoop;
        foreach (var task in _connections)
            await task;
        _stop.Dispose();
    }

    /// <summary>An HTTP/1.1 response as Firecracker writes it: empty reason phrase, JSON body with a length.</summary>
    public static string Response(int status, string? json = null, bool close = false)
    {
        var builder = new StringBuilder($"HTTP/1.1 {status} \r\nServer: Firecracker API\r\n");
        builder.Append(close ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
        if (json is null)
            return builder.Append("\r\n").ToString();
        builder.Append("Content-Type: application/json\r\n");
        builder.Append($"Content-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n");
        return builder.Append(json).ToString();
    }

    public static string NoContent() => Response(204);

    public static string Fault(int status, string message) =>
        Response(status, $"{{\"fault_message\":{System.Text.Json.JsonSerializer.Serialize(message)}}}");

    internal void Record(RecordedRequest request) => Requests.Writer.TryWrite(request);
}

/// <summary>One accepted connection of a <see cref="ScriptedUnixServer"/>.</summary>
internal sealed class ServerConnection(Socket socket, ScriptedUnixServer server)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _count;

    public Socket Socket { get; } = socket;

    /// <summary>Reads one request (head and Content-Length body); null when the client closed the connection.</summary>
    public async Task<RecordedRequest?> ReadRequestAsync(CancellationToken ct)
    {
        int headEnd;
        while ((headEnd = _buffer.AsSpan(0, _count).IndexOf("\r\n\r\n"u8)) < 0)
        {
            var n = await Socket.ReceiveAsync(_buffer.AsMemory(_count), SocketFlags.None, ct);
            if (n == 0)
                return null;
            _count += n;
        }
        var head = Encoding.ASCII.GetString(_buffer, 0, headEnd).Split("\r\n");
        var parts = head[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in head.Skip(1))
        {
            var colon = line.IndexOf(':');
            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }
        var length = headers.TryGetValue("Content-Length", out var cl) ? int.Parse(cl) : 0;
        var total = headEnd + 4 + length;
        while (_count < total)
        {
            var n = await Socket.ReceiveAsync(_buffer.AsMemory(_count), SocketFlags.None, ct);
            if (n == 0)
                return null;
            _count += n;
        }
        var body = Encoding.UTF8.GetString(_buffer, headEnd + 4, length);
        _buffer.AsSpan(total, _count - total).CopyTo(_buffer);
        _count -= total;
        var request = new RecordedRequest(parts[0], parts[1], parts[2], headers, body);
        server.Record(request);
        return request;
    }

    /// <summary>Whether more request bytes already wait beyond the request just read.</summary>
    public bool HasBufferedBytes => _count > 0;

    public Task WriteAsync(string text, CancellationToken ct) => WriteAsync(Encoding.UTF8.GetBytes(text), ct);

    public async Task WriteAsync(byte[] bytes, CancellationToken ct)
    {
        var sent = 0;
        while (sent < bytes.Length)
            sent += await Socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, ct);
    }

    public void Close()
    {
        try
        {
            Socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        Socket.Dispose();
    }
}
