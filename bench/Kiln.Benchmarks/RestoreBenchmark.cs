// Restore-to-Running through Kiln beside a hand-written floor (Process.Start of the same binary + PUT /snapshot/load
// on a raw socket, same snapshot), alternated in one process so both see the same machine load (which side goes first
// alternates too); then clones per second for a batch of 50 template clones, and the clones' host memory (summed PSS)
// at 1, 10 and 50 clones. The floor does what Firecracker requires and nothing more: a 204 to a load with resume_vm
// means the VM runs (rpc_interface resumes before answering, and answers an error when the resume fails), so neither
// side asks GET / after it.
using System.Diagnostics;
using System.Globalization;
using Kiln.Api;
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Benchmarks;

/// <summary><c>--restore N</c>.</summary>
internal static class RestoreBenchmark
{
    public static async Task RunAsync(int pairs, bool withClones = true)
    {
        Console.WriteLine($"// load average before: {File.ReadAllText("/proc/loadavg").Trim()}");
        var root = Directory.CreateTempSubdirectory("krb").FullName;
        try
        {
            var firecracker = Environment.GetEnvironmentVariable("KILN_FAKE_FIRECRACKER") is { Length: > 0 } env
                ? env
                : Path.Combine(AppContext.BaseDirectory, "fake-firecracker");
            Console.WriteLine($"// firecracker: {firecracker}");
            var kernel = Path.Combine(root, "vmlinux");
            var rootfs = Path.Combine(root, "rootfs.ext4");
            var data = Path.Combine(root, "data.img");
            File.WriteAllText(kernel, "kernel");
            File.WriteAllText(rootfs, "rootfs");
            File.WriteAllText(data, "data");
            var description = new MachineDescription
            {
                BootSource = new BootSource { KernelImagePath = kernel, BootArgs = "console=ttyS0 reboot=k panic=1" },
                MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
                Devices =
                [
                    new MachineDrive(new Drive { DriveId = "rootfs", PathOnHost = rootfs, IsRootDevice = true, IsReadOnly = true }),
                    new MachineDrive(new Drive { DriveId = "data", PathOnHost = data, IsRootDevice = false, IsReadOnly = false }),
                    new MachineVsock(new Vsock { GuestCid = 3, UdsPath = Path.Combine(root, "v.sock") }),
                ],
            };
            await using var source = await Microvm.BootAsync(description, Options(firecracker, root, "src"));
            var store = new TemplateStore(Path.Combine(root, "t"));
            var template = await store.CreateAsync("bench", source);
            await source.StopAsync(ShutdownPlan.Kill());

            var kiln = new List<double>();
            var floor = new List<double>();
            var skip = Math.Min(3, pairs / 4);
            var steps = new Dictionary<string, List<double>>();
            using var listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name == "Kiln",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStopped = a =>
                {
                    lock (steps)
                    {
                        if (!steps.TryGetValue(a.OperationName, out var list))
                            steps[a.OperationName] = list = [];
                        list.Add(a.Duration.TotalMilliseconds);
                    }
                },
            };
            for (var i = 0; i < pairs; i++)
            {
                if (i == skip)
                    ActivitySource.AddActivityListener(listener);
                var kilnDir = Path.Combine(root, $"k{i}");
                var floorDir = Path.Combine(root, $"f{i}");
                if (i % 2 == 0)
                {
                    kiln.Add(await KilnOnceAsync(firecracker, template.Snapshot, kilnDir));
                    floor.Add(await FloorOnceAsync(firecracker, template.Snapshot, floorDir));
                }
                else
                {
                    floor.Add(await FloorOnceAsync(firecracker, template.Snapshot, floorDir));
                    kiln.Add(await KilnOnceAsync(firecracker, template.Snapshot, kilnDir));
                }
            }
            var k = kiln.Skip(skip).ToArray();
            var f = floor.Skip(skip).ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"paired restores: n={k.Length} kiln median {Median(k):F1} ms, floor median {Median(f):F1} ms, ratio {Median(k) / Median(f):F3}, median paired overhead {Median(k.Zip(f, (x, y) => x - y)):F1} ms"));
            lock (steps)
            {
                foreach (var (name, list) in steps.Where(p => p.Key.StartsWith(Microvm.RestoreSpanPrefix, StringComparison.Ordinal)))
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name}: median {Median(list):F2} ms (n={list.Count})"));
            }
            Console.WriteLine($"// load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
            if (!withClones)
                return;

            foreach (var count in new[] { 1, 10, 50 })
            {
                var batch = Path.Combine(root, $"b{count}");
                var t = Stopwatch.GetTimestamp();
                var clones = await template.StartClonesAsync(count, i => new TemplateCloneOptions
                {
                    Microvm = Options(firecracker, batch, $"c{i}"),
                    Directory = Path.Combine(batch, $"c{i}"),
                });
                var seconds = Stopwatch.GetElapsedTime(t).TotalSeconds;
                var pss = clones.Sum(c => PssKib(c.Pid));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"clones: {count} in {seconds:F2} s ({count / seconds:F1} clones/s), summed PSS {pss / 1024.0:F1} MiB ({pss / 1024.0 / count:F1} MiB per clone)"));
                foreach (var clone in clones)
                {
                    await clone.StopAsync(ShutdownPlan.Kill());
                    await clone.DisposeAsync();
                }
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static MicrovmOptions Options(string firecracker, string parent, string name)
    {
        var dir = Directory.CreateDirectory(Path.Combine(parent, name)).FullName;
        return new MicrovmOptions
        {
            FirecrackerPath = firecracker,
            SocketPath = Path.Combine(dir, "fc.sock"),
            ConsolePath = Path.Combine(dir, "console.log"),
            LogPath = Path.Combine(dir, "firecracker.log"),
            Id = name,
            WorkingDirectory = dir,
        };
    }

    private static async Task<double> KilnOnceAsync(string firecracker, SnapshotFiles snapshot, string dir)
    {
        var options = Options(firecracker, Path.GetDirectoryName(dir)!, Path.GetFileName(dir));
        var t = Stopwatch.GetTimestamp();
        var vm = await Microvm.RestoreAsync(snapshot, options, new RestoreOptions { VsockUdsPath = Path.Combine(dir, "v.sock") });
        var elapsed = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        await vm.StopAsync(ShutdownPlan.Kill());
        await vm.DisposeAsync();
        return elapsed;
    }

    private static async Task<double> FloorOnceAsync(string firecracker, SnapshotFiles snapshot, string dir)
    {
        Directory.CreateDirectory(dir);
        var socketPath = Path.Combine(dir, "fc.sock");
        using var appeared = new SemaphoreSlim(0);
        using var watcher = new FileSystemWatcher(dir, "fc.sock") { NotifyFilter = NotifyFilters.FileName };
        watcher.Created += (_, _) => appeared.Release();
        watcher.EnableRaisingEvents = true;
        var psi = new ProcessStartInfo(firecracker) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = dir };
        foreach (var arg in new[] { "--api-sock", socketPath, "--id", "floor", "--log-path", Path.Combine(dir, "firecracker.log") })
            psi.ArgumentList.Add(arg);
        File.Create(Path.Combine(dir, "firecracker.log")).Dispose();
        var t = Stopwatch.GetTimestamp();
        using var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!File.Exists(socketPath))
            await appeared.WaitAsync(TimeSpan.FromSeconds(10));
        using (var socket = await StartBenchmark.ConnectAsync(socketPath))
        {
            // RequestAsync throws on any answer but 2xx: a 204 with resume_vm is Running.
            await StartBenchmark.RequestAsync(socket, "PUT", "/snapshot/load",
                $"{{\"snapshot_path\":\"{snapshot.StatePath}\",\"mem_backend\":{{\"backend_type\":\"File\",\"backend_path\":\"{snapshot.MemoryPath}\"}},\"resume_vm\":true,\"vsock_override\":{{\"uds_path\":\"{Path.Combine(dir, "v.sock")}\"}}}}");
        }
        var elapsed = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        process.Kill();
        await process.WaitForExitAsync();
        return elapsed;
    }

    private static long PssKib(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
        {
            if (line.StartsWith("Pss:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        return 0;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }
}
