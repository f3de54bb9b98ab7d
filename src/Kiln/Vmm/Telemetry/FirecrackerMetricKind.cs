namespace Kiln.Vmm.Telemetry;

/// <summary>How Firecracker keeps a metric, and so how it is published.</summary>
public enum FirecrackerMetricKind
{
    /// <summary>
    /// A <c>SharedIncMetric</c>: each line holds what was counted since the previous line, so the value is a delta
    /// added to a <see cref="System.Diagnostics.Metrics.Counter{T}"/>.
    /// </summary>
    Counter,

    /// <summary>
    /// A <c>SharedStoreMetric</c>: each line holds the current value (a start-up time, a last snapshot's duration, a
    /// min/max latency, whether a deadly signal arrived), recorded on a <see cref="System.Diagnostics.Metrics.Gauge{T}"/>.
    /// </summary>
    Gauge,
}
