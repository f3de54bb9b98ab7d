using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Kiln.Vmm.Telemetry;

namespace Kiln.Benchmarks;

/// <summary>
/// One metrics line as Firecracker v1.16.1 writes it (≈ 6 KB, ≈ 330 fields with a block and a net device), parsed
/// by Kiln and published, beside a hand-written floor: the same Utf8JsonReader pass reading every number, with no
/// key lookup and nothing recorded.
/// </summary>
[MemoryDiagnoser]
public class MetricsParseBenchmark : IDisposable
{
    private readonly List<FirecrackerMetricValue> _values = new(1024);
    private byte[] _line = [];
    private FirecrackerMetricsParser _parser = null!;
    private FirecrackerMetricsPublisher _publisher = null!;
    private FirecrackerMetricsPublisher _listened = null!;
    private Meter _meter = null!;
    private Meter _listenedMeter = null!;
    private MeterListener _listener = null!;
    private long _sink;

    [GlobalSetup]
    public void Setup()
    {
        _line = Encoding.UTF8.GetBytes(Line());
        _parser = new FirecrackerMetricsParser();
        _meter = new Meter("Kiln.Bench.Unlistened");
        _listenedMeter = new Meter("Kiln.Bench.Listened");
        _publisher = new FirecrackerMetricsPublisher("bench", _meter);
        _listened = new FirecrackerMetricsPublisher("bench", _listenedMeter);
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, _listenedMeter))
                    listener.EnableMeasurementEvents(instrument);
            },
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) => _sink += value);
        _listener.Start();
        // Warm the key tables: steady state is what a long-running VM sees.
        Parse();
        Publish();
        PublishListened();
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    /// <summary>Stops the listener and disposes the meters.</summary>
    public void Dispose()
    {
        _listener?.Dispose();
        _meter?.Dispose();
        _listenedMeter?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The floor: read every token and every number of the line, nothing else.</summary>
    [Benchmark(Baseline = true)]
    public long ReaderFloor()
    {
        var reader = new Utf8JsonReader(_line);
        long sum = 0;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetUInt64(out var v))
                sum += (long)v;
        }
        return sum;
    }

    /// <summary>Kiln's parser: every field classified and keyed.</summary>
    [Benchmark]
    public int Parse()
    {
        _values.Clear();
        return _parser.Parse(_line, _values).ValueCount;
    }

    /// <summary>Parse and publish with nobody listening (instruments disabled).</summary>
    [Benchmark]
    public int Publish() => _publisher.Publish(_line).ValueCount;

    /// <summary>Parse and publish into an enabled MeterListener.</summary>
    [Benchmark]
    public int PublishListened() => _listened.Publish(_line).ValueCount;

    internal static string Line()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "metrics.jsonl");
        var doc = System.Text.Json.Nodes.JsonNode.Parse(File.ReadLines(path).First())!.AsObject();
        doc["block_rootfs"] = doc["block"]!.DeepClone();
        doc["net_eth0"] = doc["net"]!.DeepClone();
        return doc.ToJsonString();
    }

    /// <summary>`--metrics`: alternating batches of the floor and each Kiln path; medians, ratios, lines/s, bytes/line.</summary>
    public static void RunInterleaved()
    {
        const int batch = 2000;
        const int rounds = 30;
        using var bench = new MetricsParseBenchmark();
        bench.Setup();
        {
            var cases = new (string Name, Func<long> Run)[]
            {
                ("floor", bench.ReaderFloor),
                ("parse", () => bench.Parse()),
                ("publish", () => bench.Publish()),
                ("publish+listener", () => bench.PublishListened()),
            };
            var times = cases.ToDictionary(c => c.Name, _ => new List<double>());
            for (var i = 0; i < 2000; i++)
            {
                foreach (var c in cases)
                    c.Run();
            }
            for (var round = 0; round < rounds; round++)
            {
                foreach (var c in cases)
                {
                    var clock = Stopwatch.StartNew();
                    for (var i = 0; i < batch; i++)
                        c.Run();
                    times[c.Name].Add(clock.Elapsed.TotalMicroseconds / batch);
                }
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"line: {bench._line.Length} bytes, {bench.Parse()} values"));
            foreach (var c in cases)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                for (var i = 0; i < 10_000; i++)
                    c.Run();
                var allocated = (GC.GetAllocatedBytesForCurrentThread() - before) / 10_000.0;
                var median = Median(times[c.Name]);
                var ratios = times[c.Name].Zip(times["floor"], (t, f) => t / f).ToList();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{c.Name,-18} median {median,8:F2} us/line  {1e6 / median,10:F0} lines/s  ratio to floor {Median(ratios),5:F2}  allocated {allocated:F1} B/line"));
            }
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
