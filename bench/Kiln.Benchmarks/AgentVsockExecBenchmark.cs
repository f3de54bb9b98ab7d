// Exec through a microVM's vsock, paired against a raw hybrid-vsock floor on the same VM: the floor connects to the
// VM's vsock socket, writes `CONNECT 1024\n`, reads the `OK` line, writes pre-encoded Hello + Exec frames and reads
// frames until Exit — the least any host can do to run a command in the guest. Kiln's side is Microvm.ExecAsync
// (AgentClient over HybridVsockConnector and Kiln's vsock dialer). Then restore-to-first-exec: a template made after
// the agent answered, and the time from StartCloneAsync to the clone's first successful exec, beside the time from
// StartCloneAsync to Running.
// The guest: under real Firecracker (KILN_FIRECRACKER, /dev/kvm, KILN_TEST_KERNEL, KILN_BENCH_AGENT = a native
// kiln-agent) a tiny image ImageBuilder builds; otherwise the stand-in, whose pretend guest forwards the agent port to
// a kiln-agent host process (KILN_BENCH_AGENT when set, else the JIT build): the figures are then the stand-in's
// hybrid-vsock path and Kiln's, not a guest's.
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Kiln.Api;
using Kiln.Images;
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Benchmarks;

internal static class AgentVsockExecBenchmark
{
    private const long StdoutBytes = 100L * 1024 * 1024;

    public static async Task RunPairedAsync(int pairs)
    {
        var dir = Directory.CreateDirectory(Path.Combine("/tmp", "kavb" + Guid.NewGuid().ToString("N")[..8])).FullName;
        try
        {
            var (description, options, guest) = await GuestAsync(dir);
            Console.WriteLine($"guest: {guest}");
            await using var vm = await Microvm.BootAsync(description, options, CancellationToken.None);
            await vm.WaitForAgentAsync(TimeSpan.FromSeconds(300), CancellationToken.None);
            var vsock = description.Vsock!.UdsPath;

            var trueRequest = AgentExecBenchmark.Encode(["true"]);
            var bulkRequest = AgentExecBenchmark.Encode(["head", "-c", StdoutBytes.ToString(CultureInfo.InvariantCulture), "/dev/zero"]);
            for (var i = 0; i < 20; i++)
            {
                await vm.ExecAsync(["true"], CancellationToken.None);
                await RawVsockExecAsync(vsock, trueRequest);
            }

            var floorTrue = new List<double>();
            var kilnTrue = new List<double>();
            for (var i = 0; i < pairs; i++)
            {
                // Alternate which side goes first, so a drift in load does not favour one.
                if (i % 2 == 0)
                {
                    floorTrue.Add(await AgentExecBenchmark.TimeAsync(() => RawVsockExecAsync(vsock, trueRequest)));
                    kilnTrue.Add(await AgentExecBenchmark.TimeAsync(() => vm.ExecAsync(["true"], CancellationToken.None)));
                }
                else
                {
                    kilnTrue.Add(await AgentExecBenchmark.TimeAsync(() => vm.ExecAsync(["true"], CancellationToken.None)));
                    floorTrue.Add(await AgentExecBenchmark.TimeAsync(() => RawVsockExecAsync(vsock, trueRequest)));
                }
            }

            var floorBulk = new List<double>();
            var kilnBulk = new List<double>();
            for (var i = 0; i < Math.Max(3, pairs / 10); i++)
            {
                floorBulk.Add(await AgentExecBenchmark.TimeAsync(() => RawVsockExecAsync(vsock, bulkRequest)));
                kilnBulk.Add(await AgentExecBenchmark.TimeAsync(() => DrainAsync(vm)));
            }

            Console.WriteLine($"exec true round trip through the vsock, {pairs} alternating pairs (median):");
            Console.WriteLine($"  raw hybrid-vsock floor  {AgentExecBenchmark.Median(floorTrue):0.000} ms");
            Console.WriteLine($"  Microvm.ExecAsync       {AgentExecBenchmark.Median(kilnTrue):0.000} ms   ratio {AgentExecBenchmark.Median(kilnTrue) / AgentExecBenchmark.Median(floorTrue):0.00}");
            Console.WriteLine($"100 MiB stdout through the vsock, {floorBulk.Count} alternating pairs (median):");
            Console.WriteLine($"  raw hybrid-vsock floor  {AgentExecBenchmark.Median(floorBulk):0.0} ms  {Rate(floorBulk)} MiB/s");
            Console.WriteLine($"  Microvm streaming exec  {AgentExecBenchmark.Median(kilnBulk):0.0} ms  {Rate(kilnBulk)} MiB/s   ratio {AgentExecBenchmark.Median(kilnBulk) / AgentExecBenchmark.Median(floorBulk):0.00}");

            await RestoreToFirstExecAsync(dir, vm, options, Math.Max(3, pairs / 20));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string Rate(List<double> milliseconds) =>
        (StdoutBytes / 1048576.0 / (AgentExecBenchmark.Median(milliseconds) / 1000)).ToString("0", CultureInfo.InvariantCulture);

    private static async Task RestoreToFirstExecAsync(string dir, Microvm vm, MicrovmOptions options, int clones)
    {
        var template = await new TemplateStore(Path.Combine(dir, "templates")).CreateAsync("agent", vm, CancellationToken.None);
        var running = new List<double>();
        var firstExec = new List<double>();
        for (var i = 0; i < clones; i++)
        {
            var clone = new TemplateCloneOptions
            {
                Microvm = options with { SocketPath = Path.Combine(dir, $"c{i}.sock"), ConsolePath = Path.Combine(dir, $"c{i}.console"), Id = $"c{i}" },
                Directory = Path.Combine(dir, $"c{i}"),
            };
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            await using var restored = await template.StartCloneAsync(clone, CancellationToken.None);
            running.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            await restored.WaitForAgentAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
            var result = await restored.ExecAsync(["true"], CancellationToken.None);
            firstExec.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            if (result.ExitCode != 0)
                throw new InvalidOperationException($"true exited {result.ExitCode} in clone {i}");
            await restored.StopAsync(ShutdownPlan.Kill(), CancellationToken.None);
            template.RemoveCloneFiles(clone);
        }
        Console.WriteLine($"template clone, {clones} restores (median):");
        Console.WriteLine($"  restore → Running              {AgentExecBenchmark.Median(running):0.0} ms");
        Console.WriteLine($"  restore → first exec answered  {AgentExecBenchmark.Median(firstExec):0.0} ms   (+{AgentExecBenchmark.Median(firstExec) - AgentExecBenchmark.Median(running):0.0} ms)");
    }

    private static async Task DrainAsync(Microvm vm)
    {
        await using var process = await vm.Agent.StartAsync(["head", "-c", StdoutBytes.ToString(CultureInfo.InvariantCulture), "/dev/zero"], new Kiln.Agent.ExecOptions(), false, CancellationToken.None);
        var copy = process.StandardOutput.CopyToAsync(Stream.Null);
        await process.StandardError.CopyToAsync(Stream.Null);
        await copy;
        var exit = await process.Exit;
        if (exit.ExitCode != 0)
            throw new InvalidOperationException($"head exited {exit.ExitCode}");
    }

    // Firecracker's host-initiated hybrid vsock by hand: CONNECT, the OK line (read byte by byte so nothing after it
    // is lost), then the agent's frames.
    private static async Task RawVsockExecAsync(string udsPath, byte[] request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath));
        await socket.SendAsync("CONNECT 1024\n"u8.ToArray(), SocketFlags.None);
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await socket.ReceiveAsync(one, SocketFlags.None) == 0)
                throw new IOException("the vsock closed before OK");
            if (one[0] == (byte)'\n')
                break;
            line.Append((char)one[0]);
        }
        if (!line.ToString().StartsWith("OK ", StringComparison.Ordinal))
            throw new IOException($"CONNECT answered '{line}'");
        await socket.SendAsync(request, SocketFlags.None);
        await AgentExecBenchmark.ReadUntilExitAsync(socket);
    }

    private static async Task<(MachineDescription, MicrovmOptions, string)> GuestAsync(string dir)
    {
        var firecracker = Environment.GetEnvironmentVariable("KILN_FIRECRACKER");
        var kernel = Environment.GetEnvironmentVariable("KILN_TEST_KERNEL");
        var agent = Environment.GetEnvironmentVariable("KILN_BENCH_AGENT");
        var vsock = new MachineVsock(new Vsock { GuestCid = 3, UdsPath = Path.Combine(dir, "v.sock") });
        var options = new MicrovmOptions
        {
            SocketPath = Path.Combine(dir, "fc.sock"),
            ConsolePath = Path.Combine(dir, "console"),
            WorkingDirectory = dir,
            FirecrackerPath = firecracker ?? Path.Combine(AppContext.BaseDirectory, "fake-firecracker"),
            StopTimeout = TimeSpan.FromSeconds(5),
        };
        if (firecracker is { Length: > 0 } && kernel is { Length: > 0 } && agent is { Length: > 0 } && File.Exists("/dev/kvm"))
        {
            var image = Path.Combine(dir, "tiny.ext4");
            await ImageBuilder.BuildAsync(new ImageSpec { OutputPath = image, AgentPath = agent, Base = ImageBase.Tiny });
            return (new MachineDescription
            {
                BootSource = new BootSource { KernelImagePath = kernel, BootArgs = "console=ttyS0 reboot=k panic=1 pci=off" },
                MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 256 },
                Devices = [new MachineDrive(new Drive { DriveId = "rootfs", PathOnHost = image, IsRootDevice = true, IsReadOnly = false }), vsock],
            }, options, $"real Firecracker {firecracker}, tiny image, kernel {kernel}");
        }

        await File.WriteAllTextAsync(Path.Combine(dir, "vmlinux"), "not a kernel");
        return (new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = Path.Combine(dir, "vmlinux"), BootArgs = "console=ttyS0 reboot=k panic=1" },
            MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
            Devices = [vsock],
        }, options with { Environment = new Dictionary<string, string> { ["FAKE_FC_AGENT"] = agent is { Length: > 0 } ? agent : Path.Combine(AppContext.BaseDirectory, "kiln-agent") } },
            $"the stand-in (fake-firecracker) forwarding the agent port to a kiln-agent host process ({(agent is { Length: > 0 } ? "native: KILN_BENCH_AGENT" : "JIT")}); set KILN_FIRECRACKER, KILN_TEST_KERNEL and KILN_BENCH_AGENT for a real guest");
    }
}
