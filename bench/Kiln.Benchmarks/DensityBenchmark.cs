// Density: N microVMs started at once by this one process, through the driver and through a hand-written floor, in
// alternating rounds. What is measured is the controller's own cost per VM while all N start and then run: CPU time of
// this process (CLOCK_PROCESS_CPUTIME_ID, the VMMs' own time is theirs), managed heap retained once all run (after a
// full GC), bytes allocated, resident memory and threads added, and the slowest start. The floor is what a person
// would write by hand (StartBenchmark's floor, N at once): files, Process.Start with the console piped to a file, a
// FileSystemWatcher for the API socket, hand-written HTTP on a raw socket. Targets (issue 19): ≤ 2 ms CPU and ≤ 64 KiB
// per VM in the controller.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Kiln.Sandbox;
using Kiln.Vm;

namespace Kiln.Benchmarks;

/// <summary>The controller's CPU and memory per microVM when many start at once.</summary>
public static partial class DensityBenchmark
{
    private const int PoolSize = 8;

    /// <summary>Whether the warm-up is over: only the counted rounds are profiled (<see cref="PerfControl"/>).</summary>
    private static bool _profiled;

    /// <summary>What one round cost, per VM.</summary>
    private sealed record Round(double CpuMs, double RetainedKiB, double AllocatedKiB, double RssKiB, double Threads, double SlowestMs, double JitMs = 0, double JitMethods = 0);

    /// <summary>
    /// Runs <paramref name="rounds"/> rounds of each side with <paramref name="vms"/> VMs, alternating which goes first;
    /// <paramref name="only"/> ("driver" or "floor") runs one side alone, e.g. under a profiler; <paramref name="warmups"/>
    /// uncounted rounds of each go first; <paramref name="startPath"/> is how the driver configures each VMM.
    /// </summary>
    public static async Task RunAsync(int vms, int rounds, string? only = null, int warmups = 1, MicrovmStartPath startPath = MicrovmStartPath.Api)
    {
        var options = new FirecrackerHypervisorOptions { StartPath = startPath };
        Console.WriteLine($"// driver start path: {startPath}");
        var bench = new StartBenchmark();
        bench.Setup();
        using var jitNames = Environment.GetEnvironmentVariable("KILN_DENSITY_JIT") == "1" ? new JitNames() : null;
        var driver = new List<Round>();
        var floor = new List<Round>();
        try
        {
            // Warm-up rounds of each, not counted: JIT (tier 0, then tier 1 for what ran 30 times, postponed while
            // anything still compiles at tier 0), the version probe's cache, the thread pool's threads. Their figures
            // are printed: the first is the cold cost a process's first VMs pay.
            for (var w = 0; w < warmups; w++)
            {
                if (only is null or "driver")
                {
                    var warm = await DriverRoundAsync(bench, options, vms, $"w{w}");
                    Console.WriteLine($"warm-up {w}: driver {Describe(warm)}");
                }
                if (only is null or "floor")
                {
                    var warm = await FloorRoundAsync(bench, vms, $"w{w}");
                    Console.WriteLine($"warm-up {w}: floor  {Describe(warm)}");
                }
            }
            jitNames?.Listening = true;
            _profiled = true;
            for (var r = 0; r < rounds; r++)
            {
                for (var side = 0; side < 2; side++)
                {
                    if ((side == 0) == (r % 2 == 0))
                    {
                        if (only is null or "driver")
                            driver.Add(await DriverRoundAsync(bench, options, vms, $"r{r}"));
                    }
                    else if (only is null or "floor")
                    {
                        floor.Add(await FloorRoundAsync(bench, vms, $"r{r}"));
                    }
                }
                if (driver.Count > r)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {r}: driver {Describe(driver[^1])}"));
                if (floor.Count > r)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {r}: floor  {Describe(floor[^1])}"));
            }
        }
        finally
        {
            bench.Cleanup();
        }
        if (jitNames is not null)
        {
            foreach (var (name, count) in jitNames.Counts.OrderByDescending(c => c.Value).Take(40))
                Console.WriteLine($"  jitted {count}x {name}");
        }
        if (driver.Count == 0 || floor.Count == 0)
            return;
        var d = Medians(driver);
        var f = Medians(floor);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"density, {vms} VMs at once, median of {rounds} rounds (per VM):"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  driver: {Describe(d)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  floor:  {Describe(f)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  ratio driver/floor: CPU {d.CpuMs / f.CpuMs:F2}, retained {d.RetainedKiB / f.RetainedKiB:F2}, allocated {d.AllocatedKiB / f.AllocatedKiB:F2}, RSS {d.RssKiB / Math.Max(f.RssKiB, 1):F2}"));
    }

    private static string Describe(Round r) => string.Create(CultureInfo.InvariantCulture,
        $"CPU {r.CpuMs:F2} ms, retained {r.RetainedKiB:F1} KiB, allocated {r.AllocatedKiB:F1} KiB, RSS {r.RssKiB:F1} KiB, threads {r.Threads:F2}, slowest start {r.SlowestMs:F0} ms; JIT {r.JitMs:F2} ms, {r.JitMethods:F1} methods");

    private static Round Medians(List<Round> rounds) => new(
        Median(rounds.Select(r => r.CpuMs)), Median(rounds.Select(r => r.RetainedKiB)), Median(rounds.Select(r => r.AllocatedKiB)),
        Median(rounds.Select(r => r.RssKiB)), Median(rounds.Select(r => r.Threads)), Median(rounds.Select(r => r.SlowestMs)),
        Median(rounds.Select(r => r.JitMs)), Median(rounds.Select(r => r.JitMethods)));

    private static double Median(IEnumerable<double> values)
    {
        var a = values.Order().ToArray();
        return a.Length == 0 ? double.NaN : a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    private static async Task<Round> DriverRoundAsync(StartBenchmark bench, FirecrackerHypervisorOptions options, int vms, string tag)
    {
        var config = bench.DensityConfig() with { ApiReadyTimeout = TimeSpan.FromMinutes(2), BootTimeout = TimeSpan.FromMinutes(2) };
        var drivers = new FirecrackerHypervisor[vms];
        for (var i = 0; i < vms; i++)
        {
            drivers[i] = new FirecrackerHypervisor(options);
            await drivers[i].CreateAsync($"{tag}d{i}", config);
        }
        try
        {
            return await MeasureAsync(vms, drivers.Select(d => (Func<Task>)(() => d.StartAsync())).ToArray());
        }
        finally
        {
            await Task.WhenAll(drivers.Select(async d =>
            {
                await d.StopAsync(TimeSpan.Zero, CancellationToken.None);
                await d.CleanupAsync();
                await d.DisposeAsync();
            }));
        }
    }

    private static async Task<Round> FloorRoundAsync(StartBenchmark bench, int vms, string tag)
    {
        var floors = Enumerable.Range(0, vms).Select(i => new StartBenchmark.FloorVm(bench, $"{tag}f{i}")).ToArray();
        try
        {
            return await MeasureAsync(vms, floors.Select(f => (Func<Task>)f.StartAsync).ToArray());
        }
        finally
        {
            foreach (var f in floors)
                await f.DisposeAsync();
        }
    }

    /// <summary>Starts all at once; measures this process from before the first start until all run.</summary>
    private static async Task<Round> MeasureAsync(int vms, Func<Task>[] starts)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var retainedBefore = GC.GetTotalMemory(forceFullCollection: true);
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var rssBefore = RssKiB();
        var threadsBefore = Threads();
        var jitBefore = (System.Runtime.JitInfo.GetCompilationTime(), System.Runtime.JitInfo.GetCompiledMethodCount());
        var cpuBefore = CpuNs();
        PerfControl("enable");
        var durations = await Task.WhenAll(starts.Select(async start =>
        {
            var t = Stopwatch.GetTimestamp();
            await start();
            return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }));
        var cpu = CpuNs() - cpuBefore;
        PerfControl("disable");
        var jitMs = (System.Runtime.JitInfo.GetCompilationTime() - jitBefore.Item1).TotalMilliseconds;
        var jitMethods = System.Runtime.JitInfo.GetCompiledMethodCount() - jitBefore.Item2;
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        var threads = Threads() - threadsBefore;
        var retained = GC.GetTotalMemory(forceFullCollection: true) - retainedBefore;
        var rss = RssKiB() - rssBefore;
        return new Round(cpu / 1e6 / vms, retained / 1024.0 / vms, allocated / 1024.0 / vms, (double)rss / vms,
            (double)threads / vms, durations.Max(), jitMs / vms, (double)jitMethods / vms);
    }

    /// <summary>
    /// With <c>KILN_PERF_CTL</c> naming the control FIFO of a <c>perf record --control fifo:… -D -1</c> attached to this
    /// process, turns sampling on and off around the measured part of each round (not the set-up and stop between).
    /// </summary>
    private static void PerfControl(string command)
    {
        if (_profiled && Environment.GetEnvironmentVariable("KILN_PERF_CTL") is { Length: > 0 } fifo)
            File.AppendAllText(fifo, command + "\n");
    }

    private static long RssKiB() =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    private static int Threads() => Directory.GetDirectories("/proc/self/task").Length;

    private static long CpuNs()
    {
        if (ClockGetTime(2 /* CLOCK_PROCESS_CPUTIME_ID */, out var ts) != 0)
            throw new InvalidOperationException("clock_gettime failed");
        return ts.Seconds * 1_000_000_000 + ts.Nanoseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
