// Reads the message out of an error answer. Firecracker's answer to a request line it cannot parse is
// `{ "error": "Invalid HTTP Version: Unsupported HTTP version.\nAll previous …" }` with a raw newline inside the
// string, which is not JSON; so a strict parse is retried with control characters escaped.
using System.Text.Json;

namespace Kiln.Api;

internal static class FaultMessage
{
    /// <summary>The <c>fault_message</c> (or <c>error</c>) of an error body; null when it has neither or is not JSON.</summary>
    public static string? From(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
            return null;
        if (TryParse(body, out var error))
            return error?.FaultMessage ?? error?.Error;
        if (body.IndexOfAnyInRange((byte)0, (byte)0x1f) < 0)
            return null;

        var escaped = new List<byte>(body.Length + 16);
        foreach (var b in body)
        {
            switch (b)
            {
                case (byte)'\n': escaped.AddRange("\\n"u8); break;
                case (byte)'\r': escaped.AddRange("\\r"u8); break;
                case (byte)'\t': escaped.AddRange("\\t"u8); break;
                case < 0x20: break;
                default: escaped.Add(b); break;
            }
        }
        return TryParse(escaped.ToArray(), out error) ? error?.FaultMessage ?? error?.Error : null;
    }

    private static bool TryParse(ReadOnlySpan<byte> body, out ApiError? error)
    {
        try
        {
            error = JsonSerializer.Deserialize(body, FirecrackerJsonContext.Default.ApiError);
            return true;
        }
        catch (JsonException)
        {
            error = null;
            return false;
        }
    }
}
