// One line of Firecracker's log, as written with its logger's options: `TIMESTAMP [ID:THREAD:LEVEL:FILE:LINE] message`
// (see tests/assets/samples/logger.log); the level and the origin are there only when show_level and
// show_log_origin are set. Thread names may hold spaces ("fc_vcpu 0"); ids and thread names hold no ':' or ']'.
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;

namespace Kiln.Vmm.Telemetry;

/// <summary>A parsed line of Firecracker's log.</summary>
/// <param name="Timestamp">Firecracker's local time stamp, as written (nanosecond digits).</param>
/// <param name="InstanceId">The <c>--id</c> (<c>anonymous-instance</c> without one).</param>
/// <param name="Thread">The thread (<c>main</c>, <c>fc_api</c>, <c>fc_vcpu 0</c>, …).</param>
/// <param name="Level">The level, when the logger shows it.</param>
/// <param name="Origin">Source file and line (<c>src/vmm/src/builder.rs:375</c>), when the logger shows them.</param>
/// <param name="Message">The message.</param>
public sealed record FirecrackerLogLine(string Timestamp, string InstanceId, string Thread, LogLevel? Level, string? Origin, string Message)
{
    /// <summary>Parses a line; false for text that is not a log line (e.g. the guest's console, a panic's trace).</summary>
    public static bool TryParse(string? line, [NotNullWhen(true)] out FirecrackerLogLine? parsed)
    {
        parsed = null;
        if (string.IsNullOrEmpty(line))
            return false;
        var span = line.AsSpan().TrimEnd("\r\n");
        var space = span.IndexOf(' ');
        if (space < 10 || !char.IsAsciiDigit(span[0]) || span[..space].IndexOf('T') < 0)
            return false;
        var rest = span[(space + 1)..];
        if (rest.Length < 2 || rest[0] != '[')
            return false;
        var close = rest.IndexOf(']');
        if (close < 0)
            return false;
        var header = rest[1..close];
        var message = rest[(close + 1)..];
        if (message.Length > 0 && message[0] == ' ')
            message = message[1..];

        Span<Range> parts = stackalloc Range[6];
        var count = header.Split(parts, ':');
        if (count is < 2 or > 5)
            return false;
        LogLevel? level = null;
        var next = 2;
        if (count > 2 && TryParseLevel(header[parts[2]], out var l))
        {
            level = l;
            next = 3;
        }
        string? origin = null;
        if (count - next == 2 && int.TryParse(header[parts[next + 1]], out _))
            origin = new string(header[parts[next]]) + ":" + new string(header[parts[next + 1]]);
        else if (count != next)
            return false;
        parsed = new FirecrackerLogLine(new string(span[..space]), new string(header[parts[0]]), new string(header[parts[1]]),
            level, origin, new string(message));
        return true;
    }

    // Rust's log::Level as Firecracker prints it.
    private static bool TryParseLevel(ReadOnlySpan<char> text, out LogLevel level)
    {
        level = text switch
        {
            "ERROR" => LogLevel.Error,
            "WARN" => LogLevel.Warning,
            "INFO" => LogLevel.Information,
            "DEBUG" => LogLevel.Debug,
            "TRACE" => LogLevel.Trace,
            _ => LogLevel.None,
        };
        return level != LogLevel.None;
    }
}
