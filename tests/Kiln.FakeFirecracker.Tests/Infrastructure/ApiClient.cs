// A minimal HTTP/1.1 client over the API socket, byte-exact about what it sends (the transcripts include a request
// line with a raw space in the path).
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed record ApiAnswer(int Status, string Body, string Head)
{
    public bool IsEmpty => Body.Length == 0;
}

public sealed class ApiClient : IDisposable
{
    private readonly Socket _socket;
    private readonly List<byte> _pending = [];

    private ApiClient(Socket socket) => _socket = socket;

    public static async Task<ApiClient> ConnectAsync(string path, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new ApiClient(socket);
    }

    public Task<ApiAnswer> SendAsync(string method, string path, string? body, CancellationToken ct) =>
        SendRawAsync($"{method} {path} HTTP/1.1", body is null ? null : Encoding.UTF8.GetBytes(body), ct);

    public async Task<ApiAnswer> SendRawAsync(string requestLine, byte[]? body, CancellationToken ct)
    {
        await _socket.SendAsync(Request(requestLine, body), SocketFlags.None, ct);
        return await ReadAnswerAsync(ct);
    }

    /// <summary>Writes all <paramref name="requests"/> at once (HTTP pipelining), then reads their answers in order.</summary>
    public async Task<IReadOnlyList<ApiAnswer>> SendPipelinedAsync(IReadOnlyList<(string Method, string Path, string? Body)> requests, CancellationToken ct)
    {
        var bytes = new List<byte>();
        foreach (var (method, path, body) in requests)
        {
            bytes.AddRange(Request($"{method} {path} HTTP/1.1", body is null ? null : Encoding.UTF8.GetBytes(body)));
        }

        await _socket.SendAsync(bytes.ToArray(), SocketFlags.None, ct);
        var answers = new List<ApiAnswer>();
        foreach (var _ in requests)
        {
            answers.Add(await ReadAnswerAsync(ct));
        }

        return answers;
    }

    private static byte[] Request(string requestLine, byte[]? body)
    {
        var head = new StringBuilder(requestLine).Append("\r\nHost: localhost\r\nAccept: application/json\r\n");
        if (body is not null)
        {
            head.Append("Content-Type: application/json\r\nContent-Length: ").Append(body.Length.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }

        head.Append("\r\n");
        return Encoding.ASCII.GetBytes(head.ToString()).Concat(body ?? []).ToArray();
    }

    private async Task<ApiAnswer> ReadAnswerAsync(CancellationToken ct)
    {
        var buffer = new byte[65536];
        while (true)
        {
            var all = _pending.ToArray();
            var end = IndexOf(all, "\r\n\r\n"u8.ToArray());
            if (end >= 0)
            {
                var head = Encoding.ASCII.GetString(all, 0, end);
                var length = 0;
                foreach (var line in head.Split("\r\n").Skip(1))
                {
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    {
                        length = int.Parse(line["Content-Length:".Length..].Trim(), CultureInfo.InvariantCulture);
                    }
                }

                if (all.Length - end - 4 >= length)
                {
                    var status = int.Parse(head.Split(' ')[1], CultureInfo.InvariantCulture);
                    _pending.RemoveRange(0, end + 4 + length);
                    if (status == 100)
                    {
                        continue;
                    }

                    return new ApiAnswer(status, Encoding.UTF8.GetString(all, end + 4, length), head);
                }
            }

            var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
            {
                throw new IOException("The API server closed the connection without a complete answer.");
            }

            _pending.AddRange(buffer.AsSpan(0, n).ToArray());
        }
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);

    /// <summary>Whether the server has closed this connection (a read returns end of stream).</summary>
    public async Task<bool> IsClosedAsync(CancellationToken ct)
    {
        var buffer = new byte[1];
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(5));
        return await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0;
    }

    public void Dispose() => _socket.Dispose();
}
