// `kiln demo`: the whole lifecycle in one go, timed step by step. It uses real Firecracker when one is configured
// and KVM is there, otherwise the `fake-firecracker` stand-in shipped next to kiln, and says which and why.
using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Spectre.Console;
using Kiln.Vmm;

namespace Kiln.Cli.Commands;

internal static class DemoCommand
{
    public const string FakeName = "fake-firecracker";

    public static Command Create(GlobalOptions globals)
    {
        var firecracker = new Option<string?>("--firecracker") { Description = "Real firecracker binary (default: $KILN_FIRECRACKER)." };
        var kernel = new Option<string?>("--kernel") { Description = "Guest kernel for a real run (default: $KILN_TEST_KERNEL)." };
        var initrd = new Option<string?>("--initrd") { Description = "Initrd for a real run (default: $KILN_TEST_INITRD)." };
        var rootfs = new Option<string?>("--rootfs") { Description = "Root filesystem for a real run (default: $KILN_TEST_ROOTFS)." };
        var fake = new Option<bool>("--fake") { Description = "Use fake-firecracker even when a real one is configured." };
        var command = new Command("demo", "Run one scripted microVM lifecycle (create, start, hot-plug, threads, stop, clean up) and time each step.")
        {
            firecracker, kernel, initrd, rootfs, fake,
        };
        return command.WithAction(globals, (context, cancellationToken) =>
        {
            var plan = Plan(context.Value(firecracker), context.Value(kernel), context.Value(initrd), context.Value(rootfs), context.Value(fake));
            return RunAsync(context, plan, cancellationToken);
        });
    }

    internal sealed record DemoPlan(bool Real, string FirecrackerPath, string Reason, string? Kernel, string? Initrd, string? Rootfs, string? KernelArgs);

    private static DemoPlan Plan(string? firecracker, string? kernel, string? initrd, string? rootfs, bool forceFake)
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        var realBinary = firecracker ?? Env(FirecrackerLocator.EnvironmentVariable);
        var realKernel = kernel ?? Env("KILN_TEST_KERNEL");
        string reason;
        if (forceFake)
            reason = "--fake was given";
        else if (realBinary is null)
            reason = $"no real firecracker configured (--firecracker or {FirecrackerLocator.EnvironmentVariable})";
        else if (!File.Exists(realBinary))
            reason = $"the configured firecracker {realBinary} does not exist";
        else if (!File.Exists("/dev/kvm"))
            reason = "/dev/kvm is missing";
        else if (realKernel is null || !File.Exists(realKernel))
            reason = realKernel is null ? "no guest kernel (--kernel or KILN_TEST_KERNEL)" : $"the kernel {realKernel} does not exist";
        else
        {
            return new DemoPlan(true, Path.GetFullPath(realBinary), "firecracker, /dev/kvm and a kernel are configured",
                Path.GetFullPath(realKernel), initrd ?? Env("KILN_TEST_INITRD"), rootfs ?? Env("KILN_TEST_ROOTFS"),
                Env("KILN_TEST_KERNEL_ARGS"));
        }
        var fakePath = Path.Combine(AppContext.BaseDirectory, FakeName);
        if (!File.Exists(fakePath))
        {
            throw new CliFailureException(
                $"using the stand-in because {reason}, but {FakeName} is not next to kiln ({fakePath}); build it with 'dotnet build src/Kiln.Cli' or configure a real firecracker.");
        }
        return new DemoPlan(false, fakePath, reason, null, null, null, null);
    }

    private sealed class Steps
    {
        private readonly Stopwatch _total = Stopwatch.StartNew();

        public List<DemoStepJson> Done { get; } = [];

        public double TotalMilliseconds => _total.Elapsed.TotalMilliseconds;

        public async Task<T> RunAsync<T>(Output output, string step, Func<Task<T>> work, Func<T, string> describe)
        {
            var watch = Stopwatch.StartNew();
            var result = await output.ProgressAsync($"{step}…", work);
            Done.Add(new DemoStepJson(step, watch.Elapsed.TotalMilliseconds, describe(result)));
            return result;
        }

        public async Task RunAsync(Output output, string step, Func<Task> work, string detail) =>
            await RunAsync(output, step, async () =>
            {
                await work();
                return true;
            }, _ => detail);
    }

    private static async Task<int> RunAsync(CommandContext context, DemoPlan plan, CancellationToken cancellationToken)
    {
        var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        // A short path under /tmp: the API socket path inside the root must stay under 108 bytes.
        var explicitRoot = context.Parse.GetValue<string?>("--root") is not null;
        var root = explicitRoot ? context.Root : Path.Combine("/tmp", $"kiln-demo-{suffix}");
        var files = Path.Combine("/tmp", $"kiln-demo-{suffix}-files");
        var name = $"demo-{suffix}";
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(files);
        if (!context.Json)
        {
            Output.MarkupLine(plan.Real
                ? $"Using [green]real Firecracker[/] {Markup.Escape(plan.FirecrackerPath)} ({Markup.Escape(plan.Reason)})."
                : $"Using the stand-in [yellow]{FakeName}[/] {Markup.Escape(plan.FirecrackerPath)} because {Markup.Escape(plan.Reason)}; no real VM boots.");
            Output.MarkupLine($"State root: {Markup.Escape(root)}");
        }

        var steps = new Steps();
        string? error = null;
        FirecrackerHypervisor? hypervisor = null;
        try
        {
            var (config, dataDisk) = await steps.RunAsync(context.Output, "prepare", () => Task.FromResult(Prepare(plan, root, files)),
                r => plan.Real ? $"kernel {r.Config.KernelPath}; 1 MiB data disk" : "dummy kernel, rootfs and data disk in a temp dir");
            hypervisor = new FirecrackerHypervisor(context.HypervisorOptions(VmmOwnership.Owned));
            var h = hypervisor;
            await steps.RunAsync(context.Output, "create", () => h.CreateAsync(name, config, cancellationToken), $"sandbox {name}");
            await steps.RunAsync(context.Output, "start", () => h.StartAsync(cancellationToken), $"{h.State}");
            steps.Done[^1] = steps.Done[^1] with { Detail = $"{h.State}, pid {h.Pid}" };
            await steps.RunAsync(context.Output, "hot-plug drive", () => h.HotplugAddAsync(new BlockDevice(dataDisk), cancellationToken),
                r => r is BlockHotplugResult b ? $"slot {b.Slot} → {b.GuestDevice}" : r.ToString());
            await steps.RunAsync(context.Output, "threads", () => h.GetVcpuThreadIdsAsync(cancellationToken),
                t => string.Join(", ", t.OrderBy(p => p.Key).Select(p => $"vCPU {p.Key} → tid {p.Value}")));
            await steps.RunAsync(context.Output, "stop", () => h.StopAsync(cancellationToken), "SIGTERM, reaped");
            await steps.RunAsync(context.Output, "clean up", async () =>
            {
                await h.CleanupAsync(cancellationToken);
                await h.DisposeAsync();
                hypervisor = null;
                DeleteQuietly(files);
                if (!explicitRoot)
                    DeleteQuietly(root);
            }, explicitRoot ? "sandbox removed" : "sandbox and temp dirs removed");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            error = e.Message;
            throw;
        }
        finally
        {
            if (hypervisor is not null)
            {
                // A failed step must not leave a VMM or files behind.
                try
                {
                    await hypervisor.StopAsync(CancellationToken.None);
                    await hypervisor.CleanupAsync(CancellationToken.None);
                }
                finally
                {
                    await hypervisor.DisposeAsync();
                }
            }
            DeleteQuietly(files);
            if (!explicitRoot)
                DeleteQuietly(root);
            Report(context, plan, root, steps, error);
        }
        return ExitCodes.Success;
    }

    private static (HypervisorConfig Config, string DataDisk) Prepare(DemoPlan plan, string root, string files)
    {
        var dataDisk = Path.Combine(files, "data.img");
        CreateSparse(dataDisk, 1024 * 1024);
        if (plan.Real)
        {
            return (new HypervisorConfig
            {
                FirecrackerPath = plan.FirecrackerPath,
                KernelPath = plan.Kernel!,
                InitrdPath = plan.Initrd,
                ImagePath = plan.Rootfs,
                KernelParams = Specs.ParseKernelArgs(plan.KernelArgs ?? "console=ttyS0 reboot=k panic=1"),
                VcpuCount = 2,
                MemoryMiB = 256,
                RootDirectory = root,
            }, dataDisk);
        }
        // The stand-in only checks that these files open; it boots nothing.
        var kernel = Path.Combine(files, "vmlinux");
        var rootfs = Path.Combine(files, "rootfs.ext4");
        CreateSparse(kernel, 4096);
        CreateSparse(rootfs, 1024 * 1024);
        return (new HypervisorConfig
        {
            FirecrackerPath = plan.FirecrackerPath,
            KernelPath = kernel,
            ImagePath = rootfs,
            VcpuCount = 2,
            MemoryMiB = 128,
            RootDirectory = root,
        }, dataDisk);
    }

    private static void CreateSparse(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        stream.SetLength(length);
    }

    private static void DeleteQuietly(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"kiln demo: could not remove {directory}: {e.Message}");
        }
    }

    private static void Report(CommandContext context, DemoPlan plan, string root, Steps steps, string? error)
    {
        if (context.Json)
        {
            Output.WriteJson(
                new DemoJson(plan.Real ? "firecracker" : "fake-firecracker", plan.FirecrackerPath, plan.Reason, root, error is null,
                    steps.TotalMilliseconds, steps.Done, error),
                CliJsonContext.Default.DemoJson);
            return;
        }
        var table = Output.NewTable("STEP", "TIME", "DETAIL");
        foreach (var step in steps.Done)
            table.AddRow(Markup.Escape(step.Step), $"{step.Milliseconds,8:F1} ms", Markup.Escape(step.Detail));
        table.AddRow("[bold]total[/]", $"[bold]{steps.TotalMilliseconds,8:F1} ms[/]", error is null ? "[green]ok[/]" : $"[red]failed: {Markup.Escape(error)}[/]");
        Output.Write(table);
    }
}
