// The two ways a described microVM reaches Running, alternated in one process so both see the same machine load:
// the API sequence (one request per resource, then InstanceStart) and --config-file (Firecracker applies the whole
// document itself before serving its API). Same description (rootfs + 8 drives), same binary, same readiness waits.
using System.Diagnostics;
using System.Globalization;
using Kiln.Api;
using Kiln.Vm;

namespace Kiln.Benchmarks;

/// <summary>API sequence vs <c>--config-file</c>, paired.</summary>
internal static class StartPathBenchmark
{
    private const int Drives = 8;

    public static async Task RunPairedAsync(int pairs)
    {
        var root = Directory.CreateTempSubdirectory("ksp").FullName;
        try
        {
            var firecracker = Environment.GetEnvironmentVariable("KILN_FAKE_FIRECRACKER") is { Length: > 0 } env
                ? env
                : Path.Combine(AppContext.BaseDirectory, "fake-firecracker");
            Console.WriteLine($"// firecracker: {firecracker}");
            var description = Describe(root);
            var api = new List<double>();
            var file = new List<double>();
            for (var i = 0; i < pairs; i++)
            {
                api.Add(await BootOnceAsync(firecracker, description, Path.Combine(root, $"a{i}"), MicrovmStartPath.Api));
                file.Add(await BootOnceAsync(firecracker, description, Path.Combine(root, $"c{i}"), MicrovmStartPath.ConfigFile));
            }
            var skip = Math.Min(3, pairs / 4); // warm-up pairs
            var a = api.Skip(skip).ToArray();
            var c = file.Skip(skip).ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"paired start paths: n={a.Length} api median {Median(a):F1} ms, config-file median {Median(c):F1} ms, ratio config-file/api {Median(c) / Median(a):F3}, median paired difference {Median(a.Zip(c, (x, y) => y - x)):F1} ms"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<double> BootOnceAsync(string firecracker, MachineDescription description, string dir, MicrovmStartPath path)
    {
        Directory.CreateDirectory(dir);
        var options = new MicrovmOptions
        {
            FirecrackerPath = firecracker,
            SocketPath = Path.Combine(dir, "fc.sock"),
            ConsolePath = Path.Combine(dir, "console.log"),
            LogPath = Path.Combine(dir, "firecracker.log"),
            Id = "bench",
            WorkingDirectory = dir,
            StartPath = path,
        };
        var t = Stopwatch.GetTimestamp();
        var vm = await Microvm.BootAsync(description, options);
        var elapsed = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        await vm.StopAsync(ShutdownPlan.Kill());
        await vm.DisposeAsync();
        return elapsed;
    }

    private static MachineDescription Describe(string root)
    {
        var kernel = Path.Combine(root, "vmlinux");
        File.WriteAllText(kernel, "kernel");
        var devices = new List<MachineDevice>();
        for (var i = 0; i <= Drives; i++)
        {
            var image = Path.Combine(root, $"disk{i}.img");
            File.WriteAllText(image, "disk");
            devices.Add(new MachineDrive(new Drive { DriveId = i == 0 ? "rootfs" : $"drive_{i - 1}", PathOnHost = image, IsRootDevice = false, IsReadOnly = i == 0 }));
        }
        return new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = kernel, BootArgs = "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda1" },
            MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
            Devices = devices,
        };
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }
}
