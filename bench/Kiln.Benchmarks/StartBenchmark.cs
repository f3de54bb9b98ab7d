// Start (nothing → Running) through the driver, beside a floor: what a person would write by hand to do the same job
// with the same binary. Both sides are timed whole. The driver: a new FirecrackerHypervisor, CreateAsync, StartAsync
// (directory, lock, state file, placeholders, spawn, readiness, every API request). The floor: make the directory,
// Firecracker's log file and the placeholder files, Process.Start the binary (console piped to a file), wait for the
// API socket (inotify), then the same HTTP requests on a raw Unix socket up to InstanceStart. The difference is
// what the driver adds: bookkeeping, the owned-VMM launch (session + death signal), the typed client, tracing and
// logging. Runs against fake-firecracker, or real Firecracker when KILN_FIRECRACKER (plus KILN_TEST_KERNEL and
// KILN_TEST_ROOTFS/KILN_TEST_INITRD) are set.
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Kiln.Sandbox;

namespace Kiln.Benchmarks;

/// <summary>How long a sandbox takes to start, and how much of that is the driver's.</summary>
[Config(typeof(StartBenchmarkConfig))]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet owns the lifecycle: IterationCleanup disposes each driver.")]
public class StartBenchmark
{
    private const int PoolSize = 8;
    private string _root = "";
    private string _firecracker = "";
    private string _kernel = "";
    private string? _initrd;
    private string? _image;
    private int _counter;
    private FirecrackerHypervisor? _driver;
    private Process? _floorProcess;
    private Task? _floorConsole;
    private string _floorDir = "";
    private string? _rootDevice;
    private readonly Dictionary<string, List<double>> _floorPhases = [];
    private long _floorStart;

    private void Phase(string name)
    {
        if (!_floorPhases.TryGetValue(name, out var list))
            _floorPhases[name] = list = [];
        list.Add(Stopwatch.GetElapsedTime(_floorStart).TotalMilliseconds);
    }

    /// <summary>Finds the binary and makes the guest files.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _root = Directory.CreateTempSubdirectory("kb").FullName;
        var real = Environment.GetEnvironmentVariable("KILN_FIRECRACKER");
        if (!string.IsNullOrEmpty(real))
        {
            _firecracker = real;
            _kernel = Environment.GetEnvironmentVariable("KILN_TEST_KERNEL") ?? throw new InvalidOperationException("KILN_TEST_KERNEL is not set");
            _initrd = NullIfEmpty(Environment.GetEnvironmentVariable("KILN_TEST_INITRD"));
            _image = NullIfEmpty(Environment.GetEnvironmentVariable("KILN_TEST_ROOTFS"));
        }
        else
        {
            _firecracker = FindFake();
            _kernel = Path.Combine(_root, "vmlinux");
            _image = Path.Combine(_root, "rootfs.ext4");
            File.WriteAllText(_kernel, "kernel");
            File.WriteAllText(_image, "rootfs");
        }
        // The person writing the floor knows their image: the same root= the driver finds in it.
        _rootDevice = _image is null ? null : Kiln.Vm.RootDevice.Choose(_image, []).Device;
        Console.WriteLine($"// firecracker: {_firecracker}");
    }

    /// <summary>Removes the guest files.</summary>
    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    /// <summary>Stops and removes the driver's sandbox.</summary>
    [IterationCleanup(Target = nameof(Driver))]
    public void CleanupDriver()
    {
        _driver!.StopAsync().GetAwaiter().GetResult();
        _driver.CleanupAsync().GetAwaiter().GetResult();
        _driver.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _driver = null;
    }

    /// <summary>Kills the floor's VMM and removes its directory.</summary>
    [IterationCleanup(Target = nameof(Floor))]
    public void CleanupFloor()
    {
        _floorProcess!.Kill();
        _floorProcess.WaitForExit();
        _floorConsole!.GetAwaiter().GetResult();
        _floorProcess.Dispose();
        _floorProcess = null;
        Directory.Delete(_floorDir, recursive: true);
    }

    /// <summary>Nothing → Running through the driver: construct, <see cref="FirecrackerHypervisor.CreateAsync"/>, <see cref="FirecrackerHypervisor.StartAsync"/>.</summary>
    [Benchmark]
    public async Task Driver()
    {
        _driver = new FirecrackerHypervisor();
        await _driver.CreateAsync($"d{_counter++}", Config());
        await _driver.StartAsync();
    }

    /// <summary>Nothing → Running by hand: files, Process.Start, hand-written HTTP on a raw socket.</summary>
    [Benchmark(Baseline = true)]
    public async Task Floor()
    {
        _floorStart = Stopwatch.GetTimestamp();
        var vm = new FloorVm(this, $"f{_counter++}", Phase);
        _floorDir = vm.Directory;
        await vm.StartAsync();
        _floorProcess = vm.Process;
        _floorConsole = vm.Console;
    }

    /// <summary>
    /// One VM started by hand: the directory, Firecracker's log file and the placeholders, Process.Start (console piped
    /// to a file), a FileSystemWatcher for the API socket, then the API requests as hand-written HTTP on one raw socket.
    /// </summary>
    internal sealed class FloorVm(StartBenchmark bench, string name, Action<string>? phase = null) : IAsyncDisposable
    {
        public string Directory { get; } = Path.Combine(bench._root, name);

        public Process? Process { get; private set; }

        public Task? Console { get; private set; }

        public async Task StartAsync()
        {
            System.IO.Directory.CreateDirectory(Directory);
            var socketPath = Path.Combine(Directory, "firecracker.sock");
            var logPath = Path.Combine(Directory, "firecracker.log");
            File.Create(logPath).Dispose(); // --log-path wants the file to exist
            for (var i = 0; i < PoolSize; i++)
            {
                using var placeholder = File.Create(Path.Combine(Directory, $"pool-{i}.img"));
                placeholder.SetLength(1024 * 1024);
            }

            using var appeared = new SemaphoreSlim(0);
            using var watcher = new FileSystemWatcher(Directory, "firecracker.sock") { NotifyFilter = NotifyFilters.FileName };
            watcher.Created += (_, _) => appeared.Release();
            watcher.EnableRaisingEvents = true;
            var start = new ProcessStartInfo(bench._firecracker)
            {
                UseShellExecute = false,
                WorkingDirectory = Directory,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            // The driver's command line, so that both pay for Firecracker's log file.
            foreach (var arg in new[] { "--api-sock", socketPath, "--id", name, "--log-path", logPath })
                start.ArgumentList.Add(arg);
            phase?.Invoke("floor.files");
            Process = Process.Start(start)!;
            Console = CaptureConsoleAsync(Process, Path.Combine(Directory, "console.log"));
            phase?.Invoke("floor.spawned");
            if (!File.Exists(socketPath))
                await appeared.WaitAsync(TimeSpan.FromMinutes(2));
            phase?.Invoke("floor.socket");

            // Connected is ready: Firecracker binds and listens in one call and queues the connection until it serves
            // it, so the first request needs no GET / before it (the driver does the same).
            using var socket = await ConnectAsync(socketPath);
            phase?.Invoke("floor.api-ready");
            await RequestAsync(socket, "PUT", "/machine-config", """{"vcpu_count":1,"mem_size_mib":128}""");
            var initrd = bench._initrd is null ? "" : $",\"initrd_path\":\"{bench._initrd}\"";
            var root = bench._rootDevice is null ? "" : " root=" + bench._rootDevice;
            await RequestAsync(socket, "PUT", "/boot-source",
                $"{{\"kernel_image_path\":\"{bench._kernel}\"{initrd},\"boot_args\":\"console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd{root}\"}}");
            if (bench._image is not null)
                await RequestAsync(socket, "PUT", "/drives/rootfs", $"{{\"drive_id\":\"rootfs\",\"path_on_host\":\"{bench._image}\",\"is_root_device\":false,\"is_read_only\":true}}");
            for (var i = 0; i < PoolSize; i++)
            {
                await RequestAsync(socket, "PUT", $"/drives/drive_{i}",
                    $"{{\"drive_id\":\"drive_{i}\",\"path_on_host\":\"{Path.Combine(Directory, $"pool-{i}.img")}\",\"is_root_device\":false,\"is_read_only\":false}}");
            }
            // InstanceStart answers once the vCPUs run: GET / would say Running, so neither side asks.
            await RequestAsync(socket, "PUT", "/actions", """{"action_type":"InstanceStart"}""");
        }

        /// <summary>Kills the VMM and removes its directory.</summary>
        public async ValueTask DisposeAsync()
        {
            if (Process is { } process)
            {
                process.Kill();
                await process.WaitForExitAsync();
                await Console!;
                process.Dispose();
            }
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    /// <summary>The floor's console: stdout and stderr appended to one file, as the driver does.</summary>
    private static Task CaptureConsoleAsync(Process process, string path)
    {
        var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1);
        var gate = new SemaphoreSlim(1);
        async Task Pump(Stream from)
        {
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await from.ReadAsync(buffer)) > 0)
            {
                await gate.WaitAsync();
                try
                {
                    await file.WriteAsync(buffer.AsMemory(0, n));
                }
                finally
                {
                    gate.Release();
                }
            }
        }
        return Task.WhenAll(Pump(process.StandardOutput.BaseStream), Pump(process.StandardError.BaseStream))
            .ContinueWith(_ => { file.Dispose(); gate.Dispose(); }, TaskScheduler.Default);
    }

    /// <summary>
    /// Driver and floor alternately, <paramref name="pairs"/> times: both see the same machine load, which on a shared
    /// machine moves more than the driver's overhead. Prints the medians, their ratio and the median paired difference,
    /// then the median of each of the driver's start steps (its trace spans) and of its create.
    /// </summary>
    public static async Task RunPairedAsync(int pairs)
    {
        var bench = new StartBenchmark();
        bench.Setup();
        var driver = new List<double>();
        var floor = new List<double>();
        var steps = new Dictionary<string, List<double>>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Kiln",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = activity =>
            {
                lock (steps)
                {
                    if (!steps.TryGetValue(activity.OperationName, out var list))
                        steps[activity.OperationName] = list = [];
                    list.Add(activity.Duration.TotalMilliseconds);
                }
            },
        };
        var create = new List<double>();
        try
        {
            for (var i = 0; i < pairs; i++)
            {
                // Alternate which side goes first, so neither always runs on the other's leftovers.
                for (var side = 0; side < 2; side++)
                {
                    if ((side == 0) == (i % 2 == 0))
                    {
                        if (i == 0)
                            ActivitySource.AddActivityListener(listener);
                        var t = Stopwatch.GetTimestamp();
                        bench._driver = new FirecrackerHypervisor();
                        await bench._driver.CreateAsync($"d{bench._counter++}", bench.Config());
                        var created = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                        await bench._driver.StartAsync();
                        driver.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                        create.Add(created);
                        bench.CleanupDriver();
                    }
                    else
                    {
                        var t = Stopwatch.GetTimestamp();
                        await bench.Floor();
                        floor.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                        bench.CleanupFloor();
                    }
                }
            }
        }
        finally
        {
            bench.Cleanup();
        }
        var skip = Math.Min(3, pairs / 4); // warm-up pairs
        var d = driver.Skip(skip).ToArray();
        var f = floor.Skip(skip).ToArray();
        var diff = Median(d.Zip(f, (x, y) => x - y));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"paired starts: n={d.Length} driver median {Median(d):F2} ms, floor median {Median(f):F2} ms, ratio {Median(d) / Median(f):F3}, median paired overhead {diff:F2} ms"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  driver create (construct + CreateAsync): median {Median(create.Skip(skip)):F2} ms"));
        foreach (var (name, values) in bench._floorPhases)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name} (since the floor's start): median {Median(values.Skip(skip)):F2} ms"));
        foreach (var (name, values) in steps.OrderBy(s => s.Key, StringComparer.Ordinal))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name}: median {Median(values.Skip(skip)):F2} ms"));
    }

    private static double Median(IEnumerable<double> values)
    {
        var a = values.Order().ToArray();
        return a.Length == 0 ? double.NaN : a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    /// <summary>The driver's configuration (the density benchmark's too).</summary>
    internal HypervisorConfig DensityConfig() => Config();

    private HypervisorConfig Config() => new()
    {
        FirecrackerPath = _firecracker,
        KernelPath = _kernel,
        InitrdPath = _initrd,
        ImagePath = _image,
        BlockPoolSize = PoolSize,
        RootDirectory = Path.Combine(_root, "sb"),
    };

    internal static async Task<Socket> ConnectAsync(string path)
    {
        // The socket file exists once bound; listen() follows at once, so a refused connect is retried briefly.
        for (var attempt = 0; ; attempt++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
                return socket;
            }
            catch (SocketException) when (attempt < 1000)
            {
                socket.Dispose();
                await Task.Yield();
            }
        }
    }

    internal static async Task<string> RequestAsync(Socket socket, string method, string path, string? body)
    {
        var head = body is null
            ? $"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"
            : $"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";
        await socket.SendAsync(Encoding.UTF8.GetBytes(head), SocketFlags.None);
        var buffer = new byte[8192];
        var received = 0;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None);
            if (n == 0)
                throw new InvalidOperationException("connection closed");
            received += n;
            var text = Encoding.UTF8.GetString(buffer, 0, received);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
                continue;
            var length = 0;
            foreach (var line in text[..end].Split("\r\n"))
            {
                if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    length = int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
            if (received < end + 4 + length)
                continue;
            var status = text[9..12];
            if (status[0] != '2')
                throw new InvalidOperationException($"{method} {path}: {text}");
            return text[(end + 4)..(end + 4 + length)];
        }
    }

    private static string FindFake()
    {
        var env = Environment.GetEnvironmentVariable("KILN_FAKE_FIRECRACKER");
        if (!string.IsNullOrEmpty(env))
            return env;
        var here = Path.Combine(AppContext.BaseDirectory, "fake-firecracker");
        return File.Exists(here) ? here : throw new FileNotFoundException("fake-firecracker is not beside the benchmark; set KILN_FAKE_FIRECRACKER");
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

/// <summary>
/// In-process (so fake-firecracker is found beside the benchmark), one invocation per iteration (each starts a VMM),
/// monitoring strategy (a start is a macro operation: no unrolling, no pilot).
/// </summary>
public class StartBenchmarkConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public StartBenchmarkConfig()
    {
        AddJob(Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithStrategy(RunStrategy.Monitoring)
            .WithLaunchCount(1)
            .WithWarmupCount(5)
            .WithIterationCount(40)
            .WithInvocationCount(1)
            .WithUnrollFactor(1)
            .WithId("StartJob"));
        // Starts on a shared machine are noisy: the median says more than the mean.
        AddColumn(StatisticColumn.Median, StatisticColumn.Min);
    }
}
