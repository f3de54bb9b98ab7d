using System.Diagnostics;
using System.Globalization;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Reliability;

/// <summary>Runs alone (after the parallel tests): it counts this process's file descriptors, threads and memory.</summary>
[CollectionDefinition(DisableParallelization = true)]
public sealed class SoakRunsAlone;

/// <summary>
/// Soak and density against the stand-in. CI runs the short version; operators run the long one with
/// <c>KILN_SOAK_CYCLES=1000 KILN_DENSITY_VMS=50 KILN_SOAK_REPORT=/tmp/soak.txt dotnet test --project tests/Kiln.Tests
/// -- --filter-class '*SoakTests*'</c> (docs/reliability.md). Figures go to KILN_SOAK_REPORT when it is set.
/// </summary>
[Collection(typeof(SoakRunsAlone))]
public sealed class SoakTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var n) && n > 0 ? n : fallback;

    /// <summary>
    /// The stand-in: KILN_SOAK_CYCLES (20 by default, 1000 for the long run). Real Firecracker with a guest (the VM
    /// tier): KILN_SOAK_REAL_CYCLES (10 by default, 100 for the long run), each stop a short graceful one.
    /// </summary>
    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task Start_stop_cycles_leak_no_process_descriptor_socket_thread_or_file(string target)
    {
        using var root = new TempRoot();
        var sandboxTarget = SandboxTarget.For(target, root);
        var cycles = Math.Max(sandboxTarget.IsReal ? Setting("KILN_SOAK_REAL_CYCLES", 10) : Setting("KILN_SOAK_CYCLES", 20), 3);
        var config = sandboxTarget.Config(root);
        if (sandboxTarget.IsReal)
            config = config with { StopTimeout = TimeSpan.FromSeconds(2) };
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("soak", config, Ct);
        Snapshot? first = null;
        for (var i = 0; i < cycles; i++)
        {
            await driver.StartAsync(Ct);
            Assert.Equal(SandboxState.Running, driver.State);
            await driver.StopAsync(Ct);
            if (i == 1)
                first = Snapshot.Take(root.Path); // after two cycles: lazy runtime state and the rotated log are in place
        }
        var last = Snapshot.Take(root.Path);

        Report($"soak ({target}): {cycles} cycles; fds {first!.Fds} -> {last.Fds}; sockets {first.Sockets} -> {last.Sockets}; " +
            $"threads {first.Threads} -> {last.Threads}; files {first.Files.Length} -> {last.Files.Length}; " +
            $"RSS {first.RssKiB} KiB -> {last.RssKiB} KiB");
        Assert.Empty(ProcessScan.WithCommandLineContaining(root.Path));
        Assert.Equal(first.Files, last.Files);
        Assert.True(last.Sockets <= first.Sockets, $"sockets grew from {first.Sockets} to {last.Sockets}");
        // A few descriptors and threads come once with the runtime (assemblies loaded lazily, e.g. for a first stack
        // trace; thread pool, timers); a leak grows per cycle.
        var pipes = (First: first.FdTargets.Count(IsPipe), Last: last.FdTargets.Count(IsPipe));
        Report($"soak: pipes {pipes.First} -> {pipes.Last}");
        Assert.True(pipes.Last <= pipes.First, $"pipes grew from {pipes.First} to {pipes.Last} over {cycles} cycles");
        Assert.True(last.Fds - pipes.Last <= first.Fds - pipes.First + 8, $"descriptors grew from {first.Fds} to {last.Fds} over {cycles} cycles: {string.Join(", ", last.FdTargets.Except(first.FdTargets).GroupBy(t => t.Split(':', '[')[0]).Select(g => $"{g.Count()}x {g.Key}"))}");
        Assert.True(last.Threads <= first.Threads + 8, $"threads grew from {first.Threads} to {last.Threads} over {cycles} cycles");
    }

    /// <summary>
    /// KILN_DENSITY_VMS at once (8 by default, 50 for the long run), on the stand-in and, in the VM tier, real
    /// Firecracker (KILN_DENSITY_REAL_VMS, 8 by default: each real guest takes its memory from the host).
    /// </summary>
    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task Many_microvms_started_at_once_by_one_process_all_reach_running(string target)
    {
        using var root = new TempRoot();
        var sandboxTarget = SandboxTarget.For(target, root);
        var count = sandboxTarget.IsReal ? Setting("KILN_DENSITY_REAL_VMS", 8) : Setting("KILN_DENSITY_VMS", 8);
        var config = sandboxTarget.Config(root) with { ApiReadyTimeout = TimeSpan.FromMinutes(2), BootTimeout = TimeSpan.FromMinutes(2) };
        var drivers = new FirecrackerHypervisor[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                drivers[i] = new FirecrackerHypervisor();
                await drivers[i].CreateAsync($"d{i}", config, Ct);
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
            var rssBefore = Snapshot.RssKiBNow();
            var cpuBefore = Snapshot.CpuTicksNow();

            var starts = drivers.Select(async d =>
            {
                var watch = Stopwatch.StartNew();
                await d.StartAsync(Ct);
                return watch.Elapsed;
            }).ToArray();
            var durations = await Task.WhenAll(starts);

            var cpuTicks = Snapshot.CpuTicksNow() - cpuBefore;
            var managedAfter = GC.GetTotalMemory(forceFullCollection: true);
            var rssAfter = Snapshot.RssKiBNow();
            Assert.All(drivers, d => Assert.Equal(SandboxState.Running, d.State));
            var cpuMsPerVm = cpuTicks * 1000.0 / Snapshot.TicksPerSecond / count;
            var managedKiBPerVm = (managedAfter - managedBefore) / 1024.0 / count;
            var rssKiBPerVm = (rssAfter - rssBefore) / (double)count;
            Report(string.Create(CultureInfo.InvariantCulture,
                $"density ({target}): {count} VMs; controller CPU {cpuMsPerVm:F2} ms/VM; managed {managedKiBPerVm:F1} KiB/VM; RSS {rssKiBPerVm:F1} KiB/VM; slowest start {durations.Max().TotalMilliseconds:F0} ms"));
        }
        finally
        {
            foreach (var d in drivers.Where(d => d is not null))
            {
                await d.StopAsync(TimeSpan.Zero, CancellationToken.None);
                await d.DisposeAsync();
            }
        }
        Assert.Empty(ProcessScan.WithCommandLineContaining(root.Path));
    }

    private static bool IsPipe(string target) => target.StartsWith("pipe:", StringComparison.Ordinal);

    private static void Report(string line)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        if (Environment.GetEnvironmentVariable("KILN_SOAK_REPORT") is { Length: > 0 } path)
            File.AppendAllText(path, line + "\n");
    }

    private sealed record Snapshot(int Fds, int Sockets, int Threads, long RssKiB, string[] Files, string[] FdTargets)
    {
        public const double TicksPerSecond = 100; // USER_HZ on Linux

        public static Snapshot Take(string root)
        {
            var fds = Directory.GetFileSystemEntries("/proc/self/fd");
            var targets = fds.Select(fd =>
            {
                try
                {
                    return new FileInfo(fd).LinkTarget ?? "?";
                }
                catch (IOException)
                {
                    return "?";
                }
            }).ToArray();
            var sockets = targets.Count(t => t.StartsWith("socket:", StringComparison.Ordinal));
            return new Snapshot(fds.Length, sockets, Directory.GetDirectories("/proc/self/task").Length, RssKiBNow(),
                FaultHarness.Files(root), targets);
        }

        public static long RssKiBNow() =>
            long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

        /// <summary>utime + stime of this process (fields 14 and 15 of /proc/self/stat), in clock ticks.</summary>
        public static long CpuTicksNow()
        {
            var stat = File.ReadAllText("/proc/self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
    }
}
