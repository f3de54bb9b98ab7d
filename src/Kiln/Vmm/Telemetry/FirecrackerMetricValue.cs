namespace Kiln.Vmm.Telemetry;

/// <summary>One numeric field of a metrics line.</summary>
/// <param name="Key">Which metric.</param>
/// <param name="Value">Its value: a delta for <see cref="FirecrackerMetricKind.Counter"/>, else the current value.</param>
public readonly record struct FirecrackerMetricValue(FirecrackerMetricKey Key, ulong Value);
