// HTTP/1.1 request framing the way Firecracker's micro_http does it, including its answers to requests it cannot
// parse: a 400 whose body is `{ "error": "…\nAll previous unanswered requests will be dropped." }`, then a close.
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Kiln.FakeFirecracker.Resources;

namespace Kiln.FakeFirecracker.Http;

/// <summary>micro_http refused the bytes; the connection is answered with the message and closed.</summary>
internal sealed class HttpFramingException(string message) : Exception(message);

internal sealed class HttpConnectionReader(Socket socket, int maxPayload)
{
    private readonly byte[] _buffer = new byte[65536];
    private int _start;
    private int _end;

    /// <summary>Reads the next request; null when the peer closed the connection.</summary>
    /// <exception cref="HttpFramingException">The request cannot be parsed.</exception>
    public async Task<(ApiRequest Request, bool ExpectContinue)?> ReadAsync(CancellationToken ct)
    {
        var headerEnd = await FillUntilHeaderEnd(ct).ConfigureAwait(false);
        if (headerEnd < 0)
        {
            return null;
        }

        var head = Encoding.ASCII.GetString(_buffer, _start, headerEnd - _start);
        _start = headerEnd + 4;
        var lines = head.Split("\r\n");
        var (method, uri) = ParseRequestLine(lines[0]);
        var contentLength = 0;
        var expectContinue = false;
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new HttpFramingException("Invalid header.");
            }

            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out contentLength))
                {
                    throw new HttpFramingException("Invalid header. Reason: Invalid value. Key:Content-Length; Value:" + value);
                }
            }
            else if (name.Equals("Expect", StringComparison.OrdinalIgnoreCase) && value.Equals("100-continue", StringComparison.OrdinalIgnoreCase))
            {
                expectContinue = true;
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && !value.Equals("identity", StringComparison.OrdinalIgnoreCase))
            {
                throw new HttpFramingException("Invalid header. Reason: Unsupported value. Key:Transfer-Encoding; Value:" + value);
            }
        }

        if (contentLength > maxPayload)
        {
            throw new HttpFramingException($"Request payload with size {contentLength} is larger than the limit of {maxPayload} allowed by server.");
        }

        if (expectContinue && contentLength > 0 && _end - _start < contentLength)
        {
            await socket.SendAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray(), SocketFlags.None, ct).ConfigureAwait(false);
        }

        byte[]? body = null;
        if (contentLength > 0)
        {
            body = new byte[contentLength];
            var have = Math.Min(contentLength, _end - _start);
            _buffer.AsSpan(_start, have).CopyTo(body);
            _start += have;
            while (have < contentLength)
            {
                var n = await socket.ReceiveAsync(body.AsMemory(have), SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    return null;
                }

                have += n;
            }
        }

        return (new ApiRequest(method, uri, body), expectContinue);
    }

    private static (string Method, string Path) ParseRequestLine(string line)
    {
        var firstSpace = line.IndexOf(' ', StringComparison.Ordinal);
        if (firstSpace < 0)
        {
            throw new HttpFramingException("Invalid request.");
        }

        var method = line[..firstSpace];
        var rest = line[(firstSpace + 1)..];
        var secondSpace = rest.IndexOf(' ', StringComparison.Ordinal);
        if (secondSpace < 0)
        {
            throw new HttpFramingException("Invalid request.");
        }

        var uri = rest[..secondSpace];
        var version = rest[(secondSpace + 1)..];
        if (method is not ("GET" or "PUT" or "PATCH" or "DELETE"))
        {
            throw new HttpFramingException("Invalid HTTP Method: Unsupported HTTP method.");
        }

        if (version is not ("HTTP/1.1" or "HTTP/1.0"))
        {
            throw new HttpFramingException("Invalid HTTP Version: Unsupported HTTP version.");
        }

        // micro_http accepts an absolute path or an http:// URI and keeps only the path.
        if (uri.StartsWith("http://", StringComparison.Ordinal))
        {
            var slash = uri.IndexOf('/', "http://".Length);
            uri = slash < 0 ? "/" : uri[slash..];
        }

        if (!uri.StartsWith('/'))
        {
            throw new HttpFramingException("Invalid URI: Unsupported URI.");
        }

        var query = uri.IndexOf('?', StringComparison.Ordinal);
        return (method, query < 0 ? uri : uri[..query]);
    }

    private async Task<int> FillUntilHeaderEnd(CancellationToken ct)
    {
        while (true)
        {
            var idx = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
            if (idx >= 0)
            {
                return _start + idx;
            }

            if (_end - _start >= _buffer.Length / 2)
            {
                throw new HttpFramingException("Invalid request.");
            }

            if (!await Fill(ct).ConfigureAwait(false))
            {
                return -1;
            }
        }
    }

    private async Task<bool> Fill(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            throw new HttpFramingException("Invalid request.");
        }

        var n = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct).ConfigureAwait(false);
        _end += n;
        return n > 0;
    }
}
