// Just enough HTTP/1.1 response parsing for Firecracker's micro_http server: a status line (whose reason phrase
// Firecracker leaves empty: "HTTP/1.1 204 "), Content-Length framing and Connection: close.
using System.Buffers.Text;
using System.Text;

namespace Kiln.Api;

internal readonly record struct HttpResponseHead(int StatusCode, int? ContentLength, bool ConnectionClose)
{
    private static ReadOnlySpan<byte> HeadTerminator => "\r\n\r\n"u8;

    /// <summary>Index of the blank line ending the head, or -1 while it has not arrived.</summary>
    public static int FindEnd(ReadOnlySpan<byte> received) => received.IndexOf(HeadTerminator);

    /// <summary>Parses a response head (status line and headers, without the terminating blank line).</summary>
    public static bool TryParse(ReadOnlySpan<byte> head, out HttpResponseHead result, out string? error)
    {
        result = default;
        var lineEnd = head.IndexOf("\r\n"u8);
        var statusLine = lineEnd < 0 ? head : head[..lineEnd];
        if (!statusLine.StartsWith("HTTP/1."u8) || statusLine.Length < 12 || statusLine[8] != (byte)' '
            || !Utf8Parser.TryParse(statusLine.Slice(9, 3), out int status, out var consumed) || consumed != 3
            || status < 100 || (statusLine.Length > 12 && statusLine[12] != (byte)' '))
        {
            error = "the status line is not HTTP/1.x";
            return false;
        }

        int? contentLength = null;
        var close = false;
        var rest = lineEnd < 0 ? [] : head[(lineEnd + 2)..];
        while (!rest.IsEmpty)
        {
            var end = rest.IndexOf("\r\n"u8);
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                error = "a header line has no name";
                return false;
            }
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim((byte)' ');
            if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                if (!Utf8Parser.TryParse(value, out int length, out var used) || used != value.Length || length < 0)
                {
                    error = "Content-Length is not a number";
                    return false;
                }
                contentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
            {
                close = Ascii.EqualsIgnoreCase(value, "close"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8) && !Ascii.EqualsIgnoreCase(value, "identity"u8))
            {
                error = "Transfer-Encoding is not supported (Firecracker never sends it)";
                return false;
            }
        }

        result = new HttpResponseHead(status, contentLength, close);
        error = null;
        return true;
    }

    /// <summary>Whether a response with this status has no body whatever its headers say (RFC 9112 §6.3).</summary>
    public bool HasNoBody => StatusCode is < 200 or 204 or 304;

    /// <summary>The start of <paramref name="bytes"/> as text, control characters escaped, for error messages.</summary>
    public static string Excerpt(ReadOnlySpan<byte> bytes, int max = 200)
    {
        var cut = bytes.Length > max;
        var text = Encoding.UTF8.GetString(cut ? bytes[..max] : bytes);
        var builder = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            switch (c)
            {
                case '\r': builder.Append("\\r"); break;
                case '\n': builder.Append("\\n"); break;
                case '\t': builder.Append("\\t"); break;
                case < ' ': builder.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)); break;
                default: builder.Append(c); break;
            }
        }
        if (cut)
            builder.Append('…');
        return builder.ToString();
    }
}
