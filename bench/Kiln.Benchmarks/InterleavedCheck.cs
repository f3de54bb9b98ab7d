using System.Diagnostics;
using System.Globalization;

namespace Kiln.Benchmarks;

/// <summary>Alternates batches of the floor and the client, then reports medians, the median ratio and allocation per call.</summary>
internal static class InterleavedCheck
{
    private const int Batch = 2000;
    private const int Rounds = 40;

    public static async Task RunAsync()
    {
        var bench = new ApiRoundTripBenchmark();
        bench.Setup();
        try
        {
            for (var i = 0; i < 5000; i++)
            {
                await bench.RawSocket();
                await bench.Client();
            }

            var floor = new List<double>(Rounds);
            var client = new List<double>(Rounds);
            for (var round = 0; round < Rounds; round++)
            {
                var clock = Stopwatch.StartNew();
                for (var i = 0; i < Batch; i++)
                    await bench.RawSocket();
                floor.Add(clock.Elapsed.TotalMicroseconds / Batch);
                clock.Restart();
                for (var i = 0; i < Batch; i++)
                    await bench.Client();
                client.Add(clock.Elapsed.TotalMicroseconds / Batch);
            }

            var before = GC.GetTotalAllocatedBytes(precise: true);
            for (var i = 0; i < 10_000; i++)
                await bench.Client();
            var between = GC.GetTotalAllocatedBytes(precise: true);
            for (var i = 0; i < 10_000; i++)
                await bench.RawSocket();
            var after = GC.GetTotalAllocatedBytes(precise: true);

            var ratios = floor.Zip(client, (f, c) => c / f).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"floor median {Median(floor):F2} us, client median {Median(client):F2} us, median ratio {Median(ratios):F3}; " +
                $"allocated per call: client {(between - before) / 10_000.0:F0} B, floor {(after - between) / 10_000.0:F0} B (process-wide)"));
        }
        finally
        {
            bench.Cleanup();
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
