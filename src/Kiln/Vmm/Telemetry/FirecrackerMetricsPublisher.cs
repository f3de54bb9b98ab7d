// Turns parsed metrics lines into measurements on a System.Diagnostics.Metrics.Meter, so any MeterListener —
// OpenTelemetry's, dotnet-counters, a Prometheus exporter — sees Firecracker's metrics without Kiln-specific code.
// Counters get the line's deltas; stored values go to gauges. Each measurement carries the VM id (and the device).
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Kiln.Vmm.Telemetry;

/// <summary>
/// Publishes one VM's Firecracker metrics lines through a <see cref="Meter"/>. Lines may come from several threads
/// (they are taken one at a time).
/// </summary>
public sealed class FirecrackerMetricsPublisher
{
    // Instruments are shared by every publisher on the same meter: one instrument per name, VMs told apart by tags.
    private static readonly ConditionalWeakTable<Meter, ConcurrentDictionary<string, Instrument>> InstrumentsByMeter = new();

    private readonly Meter _meter;
    private readonly ConcurrentDictionary<string, Instrument> _instruments;
    private readonly FirecrackerMetricsParser _parser = new();
    private readonly List<FirecrackerMetricValue> _values = new(256);
    private readonly Dictionary<FirecrackerMetricKey, Slot> _slots = new(ReferenceEqualityComparer.Instance);
    private readonly KeyValuePair<string, object?>[] _vmTags;
    private readonly Lock _gate = new();

    /// <summary>Creates a publisher for one VM.</summary>
    /// <param name="vmId">The VM's (sandbox's) id, the <see cref="FirecrackerTelemetry.VmIdTag"/> of every measurement.</param>
    /// <param name="meter">The meter (e.g. from <see cref="IMeterFactory"/>); <see cref="FirecrackerTelemetry.Meter"/> when null.</param>
    public FirecrackerMetricsPublisher(string vmId, Meter? meter = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(vmId);
        VmId = vmId;
        _meter = meter ?? FirecrackerTelemetry.Meter;
        _instruments = InstrumentsByMeter.GetValue(_meter, static _ => new ConcurrentDictionary<string, Instrument>(StringComparer.Ordinal));
        _vmTags = [new(FirecrackerTelemetry.VmIdTag, vmId)];
    }

    /// <summary>The VM whose metrics this publishes.</summary>
    public string VmId { get; }

    /// <summary>Lines published so far.</summary>
    public long LinesPublished { get; private set; }

    /// <summary>Lines skipped as malformed so far.</summary>
    public long LinesSkipped { get; private set; }

    /// <summary>The last well-formed line's <c>utc_timestamp_ms</c>.</summary>
    public long? LastTimestampMs { get; private set; }

    /// <summary>Parses one line and, when it is well-formed, records all its values. Never throws on bad input.</summary>
    public FirecrackerMetricsLineResult Publish(ReadOnlySpan<byte> line)
    {
        lock (_gate)
        {
            _values.Clear();
            var result = _parser.Parse(line, _values);
            switch (result.Status)
            {
                case FirecrackerMetricsLineStatus.Parsed:
                    foreach (var value in _values)
                        Record(value);
                    LinesPublished++;
                    if (result.TimestampMs is { } ms)
                        LastTimestampMs = ms;
                    break;
                case FirecrackerMetricsLineStatus.Malformed:
                    LinesSkipped++;
                    break;
            }
            return result;
        }
    }

    private void Record(FirecrackerMetricValue value)
    {
        if (!_slots.TryGetValue(value.Key, out var slot))
        {
            slot = CreateSlot(value.Key);
            _slots[value.Key] = slot;
        }
        // Firecracker's counters are u64; nothing real comes near long.MaxValue, but a made-up line must not wrap.
        var amount = value.Value > long.MaxValue ? long.MaxValue : (long)value.Value;
        // Only counters and gauges are ever made; a name first seen as the other kind keeps its first kind.
        if (slot.Instrument is Counter<long> counter)
            counter.Add(amount, slot.Tags);
        else
            ((Gauge<long>)slot.Instrument).Record(amount, slot.Tags);
    }

    private Slot CreateSlot(FirecrackerMetricKey key)
    {
        var instrument = _instruments.GetOrAdd(key.InstrumentName, static (name, state) => state.Key.Kind == FirecrackerMetricKind.Counter
            ? state.Meter.CreateCounter<long>(name, state.Key.Unit, $"Firecracker's {state.Key.Section}.{state.Key.Field} (counted since its previous metrics line).")
            : state.Meter.CreateGauge<long>(name, state.Key.Unit, $"Firecracker's {state.Key.Section}.{state.Key.Field} (its current value)."),
            (Key: key, Meter: _meter));
        KeyValuePair<string, object?>[] tags = key.Device is null
            ? _vmTags
            : [_vmTags[0], new(FirecrackerTelemetry.DeviceTag, key.Device)];
        return new Slot(instrument, tags);
    }

    private sealed record Slot(Instrument Instrument, KeyValuePair<string, object?>[] Tags);
}
