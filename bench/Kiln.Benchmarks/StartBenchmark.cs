// Start (spawn → Running) through the driver, beside a floor: the same HTTP requests written by hand on a raw Unix
// socket against the same binary, spawned the same way (VmmProcess, owned) and awaited the same way (inotify on the
// socket's creation). The difference is what the driver adds: directory and state bookkeeping, the typed client,
// step tracing and logging. Runs against fake-firecracker, or real Firecracker when KILN_FIRECRACKER (plus
// KILN_TEST_KERNEL and KILN_TEST_ROOTFS/KILN_TEST_INITRD) are set.
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Kiln.Sandbox;
using Kiln.Vmm;

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
    private VmmProcess? _floorVmm;
    private string _floorDir = "";

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
        Console.WriteLine($"// firecracker: {_firecracker}");
    }

    /// <summary>Removes the guest files.</summary>
    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    /// <summary>A fresh sandbox for the driver.</summary>
    [IterationSetup(Target = nameof(Driver))]
    public void SetupDriver()
    {
        _driver = new FirecrackerHypervisor();
        _driver.CreateAsync($"d{_counter++}", Config()).GetAwaiter().GetResult();
    }

    /// <summary>Stops and removes the driver's sandbox.</summary>
    [IterationCleanup(Target = nameof(Driver))]
    public void CleanupDriver()
    {
        _driver!.StopAsync().GetAwaiter().GetResult();
        _driver.CleanupAsync().GetAwaiter().GetResult();
        _driver.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>A fresh directory with the placeholders made in advance for the floor.</summary>
    [IterationSetup(Target = nameof(Floor))]
    public void SetupFloor()
    {
        _floorDir = Path.Combine(_root, $"f{_counter++}");
        Directory.CreateDirectory(_floorDir);
        for (var i = 0; i < PoolSize; i++)
        {
            using var f = File.Create(Path.Combine(_floorDir, $"pool-{i}.img"));
            f.SetLength(1024 * 1024);
        }
    }

    /// <summary>Kills the floor's VMM.</summary>
    [IterationCleanup(Target = nameof(Floor))]
    public void CleanupFloor()
    {
        _floorVmm!.KillAsync().GetAwaiter().GetResult();
        _floorVmm.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_floorDir, recursive: true);
    }

    /// <summary>Spawn → Running through <see cref="FirecrackerHypervisor.StartAsync"/>.</summary>
    [Benchmark]
    public Task Driver() => _driver!.StartAsync();

    /// <summary>Spawn → Running with hand-written HTTP on a raw socket.</summary>
    [Benchmark(Baseline = true)]
    public async Task Floor()
    {
        var socketPath = Path.Combine(_floorDir, "firecracker.sock");
        using var appeared = new SemaphoreSlim(0);
        using var watcher = new FileSystemWatcher(_floorDir, "firecracker.sock") { NotifyFilter = NotifyFilters.FileName };
        watcher.Created += (_, _) => appeared.Release();
        watcher.EnableRaisingEvents = true;
        _floorVmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
        {
            ExecutablePath = _firecracker,
            // The driver's command line, so that both pay for Firecracker's log file.
            Arguments = new VmmArguments(socketPath).WithId("floor").WithLog(Path.Combine(_floorDir, "firecracker.log")),
            OutputPath = Path.Combine(_floorDir, "console.log"),
            WorkingDirectory = _floorDir,
        });
        if (!File.Exists(socketPath))
            await appeared.WaitAsync(TimeSpan.FromSeconds(10));
        using var socket = await ConnectAsync(socketPath);
        await RequestAsync(socket, "GET", "/", null);
        await RequestAsync(socket, "PUT", "/machine-config", """{"vcpu_count":1,"mem_size_mib":128}""");
        var initrd = _initrd is null ? "" : $",\"initrd_path\":\"{_initrd}\"";
        var root = _image is null ? "" : " root=/dev/vda1";
        await RequestAsync(socket, "PUT", "/boot-source",
            $"{{\"kernel_image_path\":\"{_kernel}\"{initrd},\"boot_args\":\"console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd{root}\"}}");
        if (_image is not null)
            await RequestAsync(socket, "PUT", "/drives/rootfs", $"{{\"drive_id\":\"rootfs\",\"path_on_host\":\"{_image}\",\"is_root_device\":false,\"is_read_only\":true}}");
        for (var i = 0; i < PoolSize; i++)
        {
            await RequestAsync(socket, "PUT", $"/drives/drive_{i}",
                $"{{\"drive_id\":\"drive_{i}\",\"path_on_host\":\"{Path.Combine(_floorDir, $"pool-{i}.img")}\",\"is_root_device\":false,\"is_read_only\":false}}");
        }
        await RequestAsync(socket, "PUT", "/actions", """{"action_type":"InstanceStart"}""");
        var state = await RequestAsync(socket, "GET", "/", null);
        if (!state.Contains("\"Running\"", StringComparison.Ordinal))
            throw new InvalidOperationException("not running: " + state);
    }

    /// <summary>
    /// Driver and floor alternately, <paramref name="pairs"/> times: both see the same machine load, which on a shared
    /// machine moves more than the driver's overhead. Prints the medians, their ratio and the median paired difference.
    /// </summary>
    public static async Task RunPairedAsync(int pairs)
    {
        var bench = new StartBenchmark();
        bench.Setup();
        var driver = new List<double>();
        var floor = new List<double>();
        try
        {
            for (var i = 0; i < pairs; i++)
            {
                bench.SetupDriver();
                var t = System.Diagnostics.Stopwatch.GetTimestamp();
                await bench.Driver();
                driver.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                bench.CleanupDriver();
                bench.SetupFloor();
                t = System.Diagnostics.Stopwatch.GetTimestamp();
                await bench.Floor();
                floor.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                bench.CleanupFloor();
            }
        }
        finally
        {
            bench.Cleanup();
        }
        static double Median(IEnumerable<double> xs)
        {
            var a = xs.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
        }
        var skip = Math.Min(3, pairs / 4); // warm-up pairs
        var d = driver.Skip(skip).ToArray();
        var f = floor.Skip(skip).ToArray();
        var diff = Median(d.Zip(f, (x, y) => x - y));
        Console.WriteLine(System.FormattableString.Invariant(
            $"paired starts: n={d.Length} driver median {Median(d):F1} ms, floor median {Median(f):F1} ms, ratio {Median(d) / Median(f):F3}, median paired overhead {diff:F1} ms"));
    }

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
