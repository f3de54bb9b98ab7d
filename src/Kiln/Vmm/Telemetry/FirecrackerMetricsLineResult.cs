namespace Kiln.Vmm.Telemetry;

/// <summary>What became of one metrics line.</summary>
public enum FirecrackerMetricsLineStatus
{
    /// <summary>A well-formed line; its values were taken.</summary>
    Parsed,

    /// <summary>Nothing but whitespace: skipped.</summary>
    Blank,

    /// <summary>Not a metrics line (bad JSON, a value that is not a count, too long or too deep): skipped whole.</summary>
    Malformed,
}

/// <summary>The outcome of parsing one metrics line. Parsing never throws on bad input; it says so here.</summary>
/// <param name="Status">Parsed, blank or malformed.</param>
/// <param name="ValueCount">How many values the line gave (0 unless parsed).</param>
/// <param name="TimestampMs">The line's <c>utc_timestamp_ms</c>, when it had one.</param>
/// <param name="Error">Why a malformed line was skipped.</param>
public readonly record struct FirecrackerMetricsLineResult(
    FirecrackerMetricsLineStatus Status, int ValueCount, long? TimestampMs, string? Error)
{
    internal static FirecrackerMetricsLineResult Blank => new(FirecrackerMetricsLineStatus.Blank, 0, null, null);

    internal static FirecrackerMetricsLineResult Malformed(string error) =>
        new(FirecrackerMetricsLineStatus.Malformed, 0, null, error);
}
