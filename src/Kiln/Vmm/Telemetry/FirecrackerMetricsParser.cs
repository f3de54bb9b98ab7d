// Reads Firecracker's metrics lines (one JSON object per line, see tests/assets/samples/metrics.jsonl) with
// Utf8JsonReader straight from the bytes: no DOM, no strings per field. Field paths are assembled in a reusable
// char buffer and looked up through the key table's span lookup, so once every field has been seen a line costs no
// allocation. A malformed line is skipped as a whole (its values are taken back), never thrown.
using System.Text.Json;

namespace Kiln.Vmm.Telemetry;

/// <summary>
/// Parses Firecracker's metrics lines into <see cref="FirecrackerMetricValue"/>s. Not thread-safe: one parser per
/// metrics stream. Unknown sections and fields (a newer Firecracker) are taken like known ones.
/// </summary>
public sealed class FirecrackerMetricsParser
{
    /// <summary>The longest field path kept, in characters; a longer one makes its line malformed.</summary>
    public const int MaxPathLength = 512;

    /// <summary>The deepest nesting of objects accepted (Firecracker writes three: the line, a section, an aggregate).</summary>
    public const int MaxDepth = 8;

    // Bounds the key table against a stream of made-up names; past it, keys are still made (nothing is lost) but
    // not remembered.
    private const int MaxRememberedKeys = 4096;

    private const string TimestampField = "utc_timestamp_ms";

    private readonly Dictionary<string, FirecrackerMetricKey> _keys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FirecrackerMetricKey>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly char[] _path = new char[MaxPathLength];

    /// <summary>Creates a parser with an empty key table.</summary>
    public FirecrackerMetricsParser() => _lookup = _keys.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>
    /// Parses one line (without its newline; a trailing <c>\r</c> or blanks are fine) and appends its values to
    /// <paramref name="values"/>. A malformed line appends nothing.
    /// </summary>
    public FirecrackerMetricsLineResult Parse(ReadOnlySpan<byte> line, List<FirecrackerMetricValue> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        line = line.Trim(" \t\r\n"u8);
        if (line.IsEmpty)
            return FirecrackerMetricsLineResult.Blank;
        var first = values.Count;
        try
        {
            var result = ParseObject(line, values);
            if (result.Status == FirecrackerMetricsLineStatus.Malformed)
                values.RemoveRange(first, values.Count - first);
            return result;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Utf8JsonReader has no Try form: invalid JSON (and trailing bytes after the object) arrive as a
            // JsonException, a name that is not valid UTF-8 as an InvalidOperationException when it is copied.
            values.RemoveRange(first, values.Count - first);
            return FirecrackerMetricsLineResult.Malformed(e.Message);
        }
    }

    private FirecrackerMetricsLineResult ParseObject(ReadOnlySpan<byte> line, List<FirecrackerMetricValue> values)
    {
        var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = MaxDepth });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            return FirecrackerMetricsLineResult.Malformed("a metrics line is one JSON object");

        Span<int> ends = stackalloc int[MaxDepth + 1];
        var pathLength = 0;
        var count = 0;
        long? timestamp = null;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                {
                    var depth = reader.CurrentDepth;
                    var start = depth == 1 ? 0 : ends[depth - 2] + 1;
                    if (start + reader.ValueSpan.Length > MaxPathLength)
                        return FirecrackerMetricsLineResult.Malformed($"a field path is longer than {MaxPathLength} characters");
                    if (depth > 1)
                        _path[start - 1] = '.';
                    // UTF-8 never needs more UTF-16 units than it has bytes, and unescaping only shortens.
                    var written = reader.CopyString(_path.AsSpan(start));
                    if (written == 0)
                        return FirecrackerMetricsLineResult.Malformed("a field has an empty name");
                    pathLength = start + written;
                    ends[depth - 1] = pathLength;
                    break;
                }
                case JsonTokenType.StartObject:
                case JsonTokenType.EndObject:
                    break;
                case JsonTokenType.Number:
                {
                    var path = _path.AsSpan(0, ends[reader.CurrentDepth - 1]);
                    if (reader.CurrentDepth == 1)
                    {
                        // Top level: the timestamp; any other scalar there belongs to no section and is not a metric.
                        if (path.SequenceEqual(TimestampField))
                        {
                            if (!reader.TryGetInt64(out var ms))
                                return FirecrackerMetricsLineResult.Malformed($"{TimestampField} is not an integer");
                            timestamp = ms;
                        }
                        break;
                    }
                    if (!reader.TryGetUInt64(out var value))
                        return FirecrackerMetricsLineResult.Malformed($"{new string(path)} is not an unsigned integer");
                    values.Add(new FirecrackerMetricValue(KeyFor(path, ends[0]), value));
                    count++;
                    break;
                }
                default:
                {
                    var where = reader.CurrentDepth == 0 ? "the line" : new string(_path.AsSpan(0, ends[reader.CurrentDepth - 1]));
                    return FirecrackerMetricsLineResult.Malformed($"unexpected {reader.TokenType} in {where}");
                }
            }
        }
        return new FirecrackerMetricsLineResult(FirecrackerMetricsLineStatus.Parsed, count, timestamp, null);
    }

    private FirecrackerMetricKey KeyFor(ReadOnlySpan<char> path, int sectionLength)
    {
        if (_lookup.TryGetValue(path, out var key))
            return key;
        var text = new string(path);
        key = FirecrackerMetricKey.FromParts(text, sectionLength);
        if (_keys.Count < MaxRememberedKeys)
            _keys[text] = key;
        return key;
    }
}
