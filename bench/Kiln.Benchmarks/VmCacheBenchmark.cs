// Template sandbox start-to-Running from a warm VM cache (a paused clone handed over: renames + one resume) beside a
// direct restore of the same template (spawn, API ready, drive copies, bind mounts, snapshot load), alternated in one
// process so both see the same machine load. Each side is timed whole: new FirecrackerHypervisor → CreateAsync →
// StartAsync returns Running. The cache is refilled (untimed) before every warm start, so every warm start is a hit.
using System.Diagnostics;
using System.Globalization;
using Kiln.Api;
using Kiln.Sandbox;
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Benchmarks;

/// <summary><c>--vm-cache N</c>.</summary>
internal static class VmCacheBenchmark
{
    public static async Task RunAsync(int pairs)
    {
        var root = Directory.CreateTempSubdirectory("kvc").FullName;
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
            var sourceDir = Directory.CreateDirectory(Path.Combine(root, "src")).FullName;
            await using var source = await Microvm.BootAsync(new MachineDescription
            {
                BootSource = new BootSource { KernelImagePath = kernel, BootArgs = "console=ttyS0 reboot=k panic=1" },
                MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
                Devices =
                [
                    new MachineDrive(new Drive { DriveId = "rootfs", PathOnHost = rootfs, IsRootDevice = true, IsReadOnly = true }),
                    new MachineDrive(new Drive { DriveId = "data", PathOnHost = data, IsRootDevice = false, IsReadOnly = false }),
                    new MachineVsock(new Vsock { GuestCid = 3, UdsPath = Path.Combine(sourceDir, "v.sock") }),
                ],
            }, new MicrovmOptions
            {
                FirecrackerPath = firecracker,
                SocketPath = Path.Combine(sourceDir, "fc.sock"),
                ConsolePath = Path.Combine(sourceDir, "console.log"),
                WorkingDirectory = sourceDir,
            });
            var template = await new TemplateStore(Path.Combine(root, "t")).CreateAsync("bench", source);
            await source.StopAsync(ShutdownPlan.Kill());

            var sandboxes = Path.Combine(root, "sb");
            await using var cache = await VmCache.StartAsync(new VmCacheOptions
            {
                TemplateDirectory = template.Directory,
                FirecrackerPath = firecracker,
                Directory = Path.Combine(root, "cache"),
                Size = 1,
            });
            var config = new HypervisorConfig
            {
                FirecrackerPath = firecracker,
                KernelPath = kernel,
                BlockPoolSize = 0,
                RootDirectory = sandboxes,
                Restore = SandboxRestore.FromTemplate(template.Directory),
            };
            var warm = new List<double>();
            var direct = new List<double>();
            for (var i = 0; i < pairs; i++)
            {
                await cache.WaitUntilFullAsync();
                warm.Add(await StartOnceAsync(config, $"w{i}", cache));
                direct.Add(await StartOnceAsync(config, $"d{i}", null));
            }
            var skip = Math.Min(3, pairs / 4);
            var w = warm.Skip(skip).ToArray();
            var d = direct.Skip(skip).ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"paired template sandbox starts: n={w.Length} warm cache median {Median(w):F1} ms, direct restore median {Median(d):F1} ms, ratio warm/direct {Median(w) / Median(d):F3}, median paired saving {Median(d.Zip(w, (x, y) => x - y)):F1} ms"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<double> StartOnceAsync(HypervisorConfig config, string id, VmCache? cache)
    {
        var t = Stopwatch.GetTimestamp();
        await using var sandbox = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { VmCache = cache });
        await sandbox.CreateAsync(id, config);
        await sandbox.StartAsync();
        var elapsed = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        if (sandbox.State != SandboxState.Running)
            throw new InvalidOperationException($"{id} is {sandbox.State}");
        await sandbox.StopAsync(TimeSpan.Zero);
        await sandbox.CleanupAsync();
        return elapsed;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }
}
