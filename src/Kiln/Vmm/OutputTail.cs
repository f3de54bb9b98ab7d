using System.Text;

namespace Kiln.Vmm;

/// <summary>
/// The last lines a process wrote, bounded in lines and in line length so a chatty guest console cannot grow it.
/// Thread-safe: stdout and stderr pumps append concurrently.
/// </summary>
public sealed class OutputTail
{
    private readonly Queue<string> _lines = new();
    private readonly StringBuilder _partial = new();
    private readonly int _maxLines;
    private readonly int _maxLineLength;
    private readonly Lock _gate = new();

    /// <summary>Creates an empty tail.</summary>
    public OutputTail(int maxLines = 64, int maxLineLength = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLines, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineLength, 16);
        _maxLines = maxLines;
        _maxLineLength = maxLineLength;
    }

    /// <summary>Appends decoded text; complete lines enter the ring, the rest waits for its newline.</summary>
    public void Append(ReadOnlySpan<char> text)
    {
        lock (_gate)
        {
            while (!text.IsEmpty)
            {
                var newline = text.IndexOf('\n');
                var piece = newline < 0 ? text : text[..newline];
                var room = _maxLineLength - _partial.Length;
                if (room > 0)
                    _partial.Append(piece[..Math.Min(room, piece.Length)]);
                if (newline < 0)
                    break;
                PushLine();
                text = text[(newline + 1)..];
            }
        }
    }

    /// <summary>Appends a whole line (for messages of our own, e.g. a stream that failed).</summary>
    public void AppendLine(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        Append(line + "\n");
    }

    private void PushLine()
    {
        var line = _partial.ToString().TrimEnd('\r');
        _partial.Clear();
        _lines.Enqueue(line);
        while (_lines.Count > _maxLines)
            _lines.Dequeue();
    }

    /// <summary>The retained lines plus any unterminated last line, joined with newlines.</summary>
    public override string ToString()
    {
        lock (_gate)
        {
            var all = _partial.Length > 0 ? _lines.Append(_partial.ToString()) : _lines;
            return string.Join('\n', all);
        }
    }
}
