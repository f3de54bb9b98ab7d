using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Kiln.Tests.Vmm.Telemetry;

/// <summary>
/// A MeterListener on one meter (each test has its own meter, so parallel tests never see each other's numbers):
/// sums counter measurements and keeps the last gauge value, per instrument and tag set.
/// </summary>
internal sealed class MeterRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _sums = new();
    private readonly ConcurrentDictionary<string, long> _last = new();

    public MeterRecorder(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = Key(instrument.Name, tags);
            if (instrument is Counter<long>)
                _sums.AddOrUpdate(key, value, (_, sum) => sum + value);
            else
                _last[key] = value;
        });
        _listener.Start();
    }

    /// <summary>Instrument name plus its tags as <c>name{k=v,k=v}</c>, tags sorted.</summary>
    public static string Key(string instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var parts = new List<string>();
        foreach (var tag in tags)
            parts.Add($"{tag.Key}={tag.Value}");
        parts.Sort(StringComparer.Ordinal);
        return $"{instrument}{{{string.Join(',', parts)}}}";
    }

    public IReadOnlyDictionary<string, long> CounterSums => _sums;

    public IReadOnlyDictionary<string, long> GaugeValues => _last;

    public long? Counter(string key) => _sums.TryGetValue(key, out var v) ? v : null;

    public long? Gauge(string key) => _last.TryGetValue(key, out var v) ? v : null;

    public void Dispose() => _listener.Dispose();
}
