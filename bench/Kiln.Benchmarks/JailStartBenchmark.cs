// Jailed start against plain start, paired: spawn → Running through the same hand-written HTTP requests, once on a
// firecracker spawned directly (VmmProcess) and once under the jailer (JailedVmm: validation, stale-tree check, hard
// links into the chroot, the jailer's tree and cgroups, the owned VMM's PID namespace — two unshare(1) processes, so
// that it dies with its owner — finding the VMM in it and the identity check). The
// difference is what the jail costs. Needs root. Runs fake-jailer + fake-firecracker, or KILN_JAILER +
// KILN_FIRECRACKER (with KILN_TEST_KERNEL and KILN_TEST_ROOTFS) when set.
using System.Diagnostics;
using System.Globalization;
using Kiln.Host;
using Kiln.Vmm;

namespace Kiln.Benchmarks;

/// <summary>Paired jailed/plain starts; prints medians, their ratio and the median paired difference.</summary>
internal static class JailStartBenchmark
{
    private static readonly string[] Controllers = ["cpu", "memory"];

    public static async Task RunPairedAsync(int pairs)
    {
        var root = Directory.CreateTempSubdirectory("kjb").FullName;
        var realJailer = Environment.GetEnvironmentVariable("KILN_JAILER");
        var jailer = string.IsNullOrEmpty(realJailer) ? Path.Combine(AppContext.BaseDirectory, "fake-jailer") : realJailer;
        var firecracker = string.IsNullOrEmpty(realJailer)
            ? Path.Combine(AppContext.BaseDirectory, "fake-firecracker")
            : Environment.GetEnvironmentVariable("KILN_FIRECRACKER") ?? throw new InvalidOperationException("KILN_JAILER needs KILN_FIRECRACKER");
        var kernel = Environment.GetEnvironmentVariable("KILN_TEST_KERNEL") is { Length: > 0 } k && !string.IsNullOrEmpty(realJailer) ? k : Path.Combine(root, "vmlinux");
        var rootfs = Environment.GetEnvironmentVariable("KILN_TEST_ROOTFS") is { Length: > 0 } r && !string.IsNullOrEmpty(realJailer) ? r : Path.Combine(root, "rootfs.ext4");
        if (!File.Exists(kernel))
            await File.WriteAllTextAsync(kernel, "kernel");
        if (!File.Exists(rootfs))
            await File.WriteAllTextAsync(rootfs, "rootfs");
        var parentCgroup = "kiln-bench-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new JailSettings
        {
            JailerPath = jailer,
            Uid = 65534,
            Gid = 65534,
            ChrootBaseDirectory = root,
            ParentCgroup = parentCgroup,
            CpuQuota = Cgroups.HasController(CgroupVersion.V1, "cpu") ? 1 : null,
            MemoryLimitBytes = Cgroups.HasController(CgroupVersion.V1, "memory") ? 512L << 20 : null,
        };
        Console.WriteLine($"// jailer: {jailer}, firecracker: {firecracker}");
        var plain = new List<double>();
        var jailed = new List<double>();
        try
        {
            for (var i = 0; i < pairs; i++)
            {
                var dir = Directory.CreateDirectory(Path.Combine(root, $"p{i}")).FullName;
                var t = Stopwatch.GetTimestamp();
                var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
                {
                    ExecutablePath = firecracker,
                    Arguments = new VmmArguments(Path.Combine(dir, "firecracker.sock")).WithId($"p{i}"),
                    OutputPath = Path.Combine(dir, "console.log"),
                });
                await BootAsync(Path.Combine(dir, "firecracker.sock"), kernel, rootfs);
                plain.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                await vmm.KillAsync();
                await vmm.DisposeAsync();

                t = Stopwatch.GetTimestamp();
                var jail = await JailedVmm.LaunchAsync(new JailedLaunchOptions
                {
                    Jail = settings,
                    FirecrackerPath = firecracker,
                    Id = $"j{i}",
                    Arguments = new VmmArguments(JailLayout.ApiSocketInJail),
                    OutputPath = Path.Combine(dir, "jailed-console.log"),
                    Files = [new JailFile(kernel, "/vmlinux", ReadOnly: true), new JailFile(rootfs, "/rootfs.ext4", ReadOnly: true)],
                }, TimeProvider.System);
                await BootAsync(jail.ApiSocketPath, "/vmlinux", "/rootfs.ext4");
                jailed.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                await jail.Process.KillAsync();
                await jail.CleanupAsync(TimeProvider.System);
                await jail.DisposeAsync();
            }
        }
        finally
        {
            foreach (var hierarchy in Controllers.Select(Cgroups.FindV1Hierarchy).OfType<string>())
            {
                var parent = Path.Combine(hierarchy, parentCgroup);
                if (Directory.Exists(parent))
                    Directory.Delete(parent);
            }
            Directory.Delete(root, recursive: true);
        }

        static double Median(IEnumerable<double> xs)
        {
            var a = xs.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
        }
        var skip = Math.Min(3, pairs / 4);
        var p = plain.Skip(skip).ToArray();
        var j = jailed.Skip(skip).ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"paired starts: n={p.Length} jailed median {Median(j):F1} ms, plain median {Median(p):F1} ms, ratio {Median(j) / Median(p):F3}, median paired overhead {Median(j.Zip(p, (x, y) => x - y)):F1} ms"));
    }

    // Spawn → Running with the same requests for both: machine config, boot source, the root drive, InstanceStart.
    private static async Task BootAsync(string socketPath, string kernel, string rootfs)
    {
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(socketPath))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
                throw new TimeoutException($"{socketPath} never appeared");
            await Task.Delay(1);
        }
        using var socket = await StartBenchmark.ConnectAsync(socketPath);
        await StartBenchmark.RequestAsync(socket, "PUT", "/machine-config", """{"vcpu_count":1,"mem_size_mib":128}""");
        await StartBenchmark.RequestAsync(socket, "PUT", "/boot-source", $"{{\"kernel_image_path\":\"{kernel}\",\"boot_args\":\"console=ttyS0 reboot=k panic=1 pci=off\"}}");
        await StartBenchmark.RequestAsync(socket, "PUT", "/drives/rootfs", $"{{\"drive_id\":\"rootfs\",\"path_on_host\":\"{rootfs}\",\"is_root_device\":true,\"is_read_only\":true}}");
        await StartBenchmark.RequestAsync(socket, "PUT", "/actions", """{"action_type":"InstanceStart"}""");
        var state = await StartBenchmark.RequestAsync(socket, "GET", "/", null);
        if (!state.Contains("\"Running\"", StringComparison.Ordinal))
            throw new InvalidOperationException("not running: " + state);
    }
}
