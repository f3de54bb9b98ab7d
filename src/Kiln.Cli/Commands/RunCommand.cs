using System.CommandLine;
using System.Security.Cryptography;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Kiln.Vmm;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln run</c>: create and start a microVM, in the foreground (console streamed) or detached.</summary>
internal static class RunCommand
{
    public const int MaxVcpus = 32;
    public const int MaxMemoryMiB = 1024 * 1024;

    public static Command Create(GlobalOptions globals)
    {
        var name = new Option<string?>("--name") { Description = "Sandbox name (default: kiln-<8 hex>)." };
        var kernel = new Option<string>("--kernel") { Description = "Guest kernel (vmlinux); required unless --template." };
        var initrd = new Option<string?>("--initrd") { Description = "Initial ramdisk." };
        var rootfs = new Option<string?>("--rootfs") { Description = "Root filesystem image (attached read-only)." };
        var image = new Option<string?>("--image") { Description = "An image from 'kiln image build' (PATH or NAME): boots a private writable copy with the agent as init and a vsock; --detach returns once the agent answers." };
        var vcpus = new Option<int>("--vcpus") { Description = $"vCPUs (1-{MaxVcpus}).", DefaultValueFactory = _ => 1 };
        var memory = new Option<int>("--memory") { Description = "Guest memory in MiB.", DefaultValueFactory = _ => 128 };
        var kernelArgs = new Option<string?>("--kernel-args") { Description = "Extra kernel command line, e.g. \"console=ttyS0 quiet\"." };
        var drives = new Option<string[]>("--drive") { Description = "Boot-time block device PATH[:ro] (repeatable).", DefaultValueFactory = _ => [] };
        var nets = new Option<string[]>("--net") { Description = "Network interface TAP[,mac=xx:xx:xx:xx:xx:xx] (repeatable).", DefaultValueFactory = _ => [] };
        var network = new Option<string?>("--network") { Description = "The sandbox's own network: isolated (a TAP in a fresh namespace, no egress), nat (egress through NAT), netns:PATH (a TAP in your namespace) or none (the default)." };
        var ip = new Option<string?>("--ip") { Description = "The guest's address ADDR/PREFIX on --network (default 172.16.0.2/30); given to the guest as the kernel's ip= argument." };
        var metadata = new Option<string?>("--metadata") { Description = "A JSON file: the MMDS document (V2) the guest reads on the --network interface." };
        var metadataVersion = new Option<string?>("--metadata-version") { Description = "The MMDS version of --metadata: v2 (the default: session tokens) or v1 (plain GETs, for old guests)." };
        metadataVersion.AcceptOnlyFromAmong("v1", "v2", "V1", "V2");
        var vsock = new Option<uint?>("--vsock") { Description = "Add a vsock with this guest CID (>= 3); its socket is in the sandbox directory." };
        var balloon = new Option<bool>("--balloon") { Description = "Add a balloon device (statistics every second, deflated when the guest runs out of memory): 'kiln mem' can then take memory below --memory and give it back." };
        var memoryHotplug = new Option<int?>("--memory-hotplug") { Description = "A virtio-mem region of this many MiB (a multiple of 128; Firecracker 1.14+): 'kiln mem' can then grow the guest above --memory." };
        var metrics = new Option<bool>("--metrics") { Description = "Have Firecracker write its metrics into a FIFO in the sandbox directory ('kiln stats' reads them)." };
        var consoleLimit = new Option<string?>("--console-limit") { Description = "How large each of the two console log files may grow, e.g. 64K or 8M (default 8M); a detached VM's console keeper holds it to that." };
        var firecracker = new Option<string?>("--firecracker") { Description = "firecracker binary (default: $KILN_FIRECRACKER, else firecracker on PATH)." };
        var detach = new Option<bool>("--detach", "-d") { Description = "Return once the VM runs and leave it running." };
        var remove = new Option<bool>("--rm") { Description = "Remove the sandbox when the foreground VM ends." };
        var template = new Option<string?>("--template") { Description = "Start clones of this template (kiln template create) instead of booting: each a sandbox of its own, detached." };
        var count = new Option<int?>("--count") { Description = $"With --template: how many clones (1-{RunTemplate.MaxCount}); named PREFIX-1 … PREFIX-N after --name PREFIX." };
        var stopTimeout = new Option<double>("--stop-timeout")
        {
            Description = "Seconds 'kiln stop' waits between SIGTERM and SIGKILL (0-3600).",
            DefaultValueFactory = _ => HypervisorConfig.DefaultStopTimeout.TotalSeconds,
        };

        vcpus.Check(value => value is < 1 or > MaxVcpus ? $"--vcpus must be between 1 and {MaxVcpus}, not {value}." : null);
        memory.Check(value => value is < 1 or > MaxMemoryMiB ? $"--memory must be between 1 and {MaxMemoryMiB} MiB, not {value}." : null);
        vsock.Check(value => value is < 3 ? "--vsock: guest CIDs 0-2 are reserved; use 3 or more." : null);
        memoryHotplug.Check(value => value is { } v && (v < 128 || v > MaxMemoryMiB || v % 128 != 0) ? $"--memory-hotplug must be a multiple of 128 between 128 and {MaxMemoryMiB} MiB, not {value}." : null);
        stopTimeout.Check(value => value is < 0 or > 3600 || double.IsNaN(value) ? "--stop-timeout must be between 0 and 3600 seconds." : null);

        var jail = new JailSpecs();
        jail.Cpus.Check(value => value is { } cpus && (double.IsNaN(cpus) || cpus <= 0) ? "--cpus must be a positive number of CPUs, e.g. 1.5." : null);
        var command = new Command("run", "Create and start a microVM.")
        {
            name, kernel, initrd, rootfs, image, vcpus, memory, kernelArgs, drives, nets, network, ip, metadata, vsock, firecracker, detach, remove, stopTimeout,
            template, count, balloon, memoryHotplug, metrics, consoleLimit,
        };
        foreach (var option in jail.All)
            command.Options.Add(option);
        command.Options.Add(metadataVersion);
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            if (context.Value(template) is { } templateName)
            {
                return await RunTemplate.RunAsync(context,
                    new TemplateRunRequest(templateName, context.Value(count) ?? 1, context.Value(name), context.Value(firecracker), TimeSpan.FromSeconds(context.Value(stopTimeout)))
                    {
                        Network = context.Value(network),
                        Jail = jail,
                    },
                    [kernel, initrd, rootfs, image, vcpus, memory, kernelArgs, drives, nets, ip, metadata, vsock, remove, balloon, memoryHotplug, metrics, metadataVersion, consoleLimit], cancellationToken);
            }
            if (context.Value(count) is not null)
                throw new UsageException("--count needs --template: only clones of a template start in numbers.");
            if (context.Value(kernel) is null)
                throw new UsageException("Option '--kernel' is required (or start clones of a template with --template).");
            var request = new RunRequest(
                context.Value(name) ?? GenerateName(), context.Value(kernel)!, context.Value(initrd), context.Value(rootfs),
                context.Value(vcpus), context.Value(memory), context.Value(kernelArgs), context.Value(drives) ?? [],
                context.Value(nets) ?? [], context.Value(vsock), context.Value(firecracker), context.Value(detach),
                context.Value(remove), TimeSpan.FromSeconds(context.Value(stopTimeout)), jail)
            {
                Network = context.Value(network),
                Ip = context.Value(ip),
                Metadata = context.Value(metadata),
                Image = context.Value(image),
                Balloon = context.Value(balloon),
                MemoryHotplugMiB = context.Value(memoryHotplug),
                Metrics = context.Value(metrics),
                ConsoleLimitBytes = context.Value(consoleLimit) is { } limit ? ParseConsoleLimit(limit) : null,
                MetadataVersion = context.Value(metadataVersion),
            };
            return await RunAsync(context, request, cancellationToken);
        });
    }

    private sealed record RunRequest(
        string Name, string Kernel, string? Initrd, string? Rootfs, int Vcpus, int MemoryMiB, string? KernelArgs,
        string[] Drives, string[] Nets, uint? VsockCid, string? Firecracker, bool Detach, bool Remove, TimeSpan StopTimeout, JailSpecs Jail)
    {
        public string? Network { get; init; }

        public string? Ip { get; init; }

        public string? Metadata { get; init; }

        public string? Image { get; init; }

        public bool Balloon { get; init; }

        public int? MemoryHotplugMiB { get; init; }

        public bool Metrics { get; init; }

        public long? ConsoleLimitBytes { get; init; }

        public string? MetadataVersion { get; init; }
    }

    private static long ParseConsoleLimit(string text)
    {
        long bytes;
        try
        {
            bytes = JailSpecs.ParseSize(text);
        }
        catch (UsageException)
        {
            throw new UsageException($"--console-limit '{text}' is not a size such as 65536, 64K or 8M.");
        }
        return bytes >= 4096 ? bytes : throw new UsageException($"--console-limit must be at least 4096 bytes (4K), not {text}.");
    }

    public static string GenerateName() => $"kiln-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

    private static async Task<int> RunAsync(CommandContext context, RunRequest request, CancellationToken cancellationToken)
    {
        // Everything that can be checked without side effects is, before anything is created.
        if (context.Json && !request.Detach)
            throw new UsageException("--json needs --detach: a foreground run streams the VM's console, which is not JSON.");
        if (request.Remove && request.Detach)
            throw new UsageException("--rm applies to a foreground run; a detached sandbox is removed with 'kiln rm'.");
        Sandboxes.ValidateName(request.Name, context.Root);
        if (request.Image is not null && request.Rootfs is not null)
            throw new UsageException("--image and --rootfs both give the root filesystem: give one of them.");
        if (request.Initrd is null && request.Rootfs is null && request.Image is null)
            throw new UsageException("give the guest something to boot: --image, --rootfs, --initrd, or --rootfs with --initrd.");
        var image = request.Image is null ? null : ImageFiles.Resolve(context.Root, request.Image);
        var kernel = Specs.RequireFile(request.Kernel, "--kernel");
        var initrd = request.Initrd is null ? null : Specs.RequireFile(request.Initrd, "--initrd");
        var rootfs = request.Rootfs is null ? null : Specs.RequireFile(request.Rootfs, "--rootfs");
        var kernelParams = Specs.ParseKernelArgs(request.KernelArgs);
        var sandboxNetwork = Specs.ParseNetwork(request.Network, request.Ip);
        if (request.Metadata is not null && sandboxNetwork is null)
            throw new UsageException("--metadata needs --network isolated, nat or netns:PATH: the guest reads it on that interface.");
        var metadataDocument = request.Metadata is null ? null : Specs.ParseMetadata(request.Metadata);
        if (request.MetadataVersion is not null && metadataDocument is null)
            throw new UsageException("--metadata-version needs --metadata: it is the version of that metadata service.");
        var mmdsVersion = request.MetadataVersion?.ToLowerInvariant() == "v1" ? Kiln.Api.MmdsVersion.V1 : Kiln.Api.MmdsVersion.V2;
        var firecrackerPath = FirecrackerLocator.Require(request.Firecracker).Path;
        var jail = request.Jail.Build(context, firecrackerPath);
        // A jailed VMM's vsock is a link into the chroot; a jailed agent image (its copy linked into the chroot too) has
        // not been tried yet, so it is refused rather than left to fail at the agent wait.
        if (jail is not null && image is not null)
            throw new UsageException("--image is not available with --jail yet.");
        if (jail?.NetworkNamespacePath is not null && sandboxNetwork is not null)
            throw new UsageException("--netns and --network both choose the VMM's network namespace: give one of them.");
        var config = new HypervisorConfig
        {
            FirecrackerPath = firecrackerPath,
            Jail = jail,
            KernelPath = kernel,
            InitrdPath = initrd,
            ImagePath = rootfs,
            KernelParams = kernelParams,
            VcpuCount = request.Vcpus,
            MemoryMiB = request.MemoryMiB,
            StopTimeout = request.StopTimeout,
            RootDirectory = context.Root,
            Network = sandboxNetwork,
            Metadata = metadataDocument is null ? null : new MetadataSettings { Document = metadataDocument, Version = mmdsVersion },
            Balloon = request.Balloon ? new BalloonSettings() : null,
            MemoryHotplug = request.MemoryHotplugMiB is { } region ? new MemoryHotplugSettings(region) : null,
            Metrics = request.Metrics,
            ConsoleLimitBytes = request.ConsoleLimitBytes,
        };
        var devices = new List<HypervisorDevice>();
        devices.AddRange(request.Drives.Select(Specs.ParseDrive));
        devices.AddRange(request.Nets.Select(Specs.ParseNet));
        if ((request.VsockCid ?? (image is null ? null : ImageRun.DefaultGuestCid)) is { } cid)
            devices.Add(new VsockDevice(cid, Path.Combine(context.Root, request.Name, "vsock.sock")));
        if (await ExistsAsync(context.Root, request.Name, cancellationToken))
            throw new CliFailureException($"a sandbox named '{request.Name}' already exists under {context.Root} (remove it with 'kiln rm {request.Name}').");

        Directory.CreateDirectory(context.Root);
        if (image is not null)
        {
            var copy = await ImageRun.CopyAsync(context.Root, request.Name, image, cancellationToken);
            config = config with { ImagePath = copy, ImageReadOnly = false, KernelParams = ImageRun.WithImageParams(config.KernelParams) };
        }
        var ownership = request.Detach ? VmmOwnership.Detached : VmmOwnership.Owned;
        await using var hypervisor = new FirecrackerHypervisor(context.HypervisorOptions(ownership));
        try
        {
            await hypervisor.CreateAsync(request.Name, config, cancellationToken);
        }
        catch when (image is not null)
        {
            ImageRun.RemoveCopy(config.ImagePath!);
            throw;
        }
        // Another kiln run with this name got past the check above and started first: this driver re-attached to its
        // VMM, which is not ours to stop or remove.
        if (hypervisor.State is not SandboxState.Created)
            throw new CliFailureException($"a sandbox named '{request.Name}' already exists under {context.Root} (remove it with 'kiln rm {request.Name}').");
        try
        {
            foreach (var device in devices)
                await hypervisor.AddDeviceAsync(device, cancellationToken);
            await context.Output.ProgressAsync($"Starting {request.Name}…", () => hypervisor.StartAsync(cancellationToken));
        }
        catch
        {
            // run is create+start as one step: a sandbox that never ran must not keep its name. Unless the driver now
            // drives a VMM another kiln run of the same name started meanwhile (the start was refused): that one stays.
            if (!Sandboxes.IsLive(hypervisor.State))
                await CleanupAfterFailedStartAsync(context.Output, hypervisor);
            throw;
        }

        if (image is not null && request.Detach)
        {
            // Readiness of an agent image is its agent answering: a guest that never gets there is a failed start.
            try
            {
                await context.Output.ProgressAsync($"Waiting for {request.Name}'s agent…", () => ImageRun.WaitForAgentAsync(hypervisor, request.Name, cancellationToken));
            }
            catch
            {
                await CleanupAfterFailedStartAsync(context.Output, hypervisor);
                throw;
            }
        }

        if (request.Detach)
        {
            if (context.Json)
            {
                Output.WriteJson(
                    new RunResultJson(request.Name, hypervisor.State, hypervisor.Pid, hypervisor.SandboxDirectory,
                        hypervisor.SocketPath, hypervisor.ConsolePath),
                    CliJsonContext.Default.RunResultJson);
            }
            else
            {
                Output.WriteLine(request.Name);
            }
            return ExitCodes.Success;
        }
        return await ForegroundAsync(context, hypervisor, request, cancellationToken);
    }

    /// <summary>
    /// Streams the console until the VM ends or the user interrupts; either way the VM is stopped through the driver
    /// (SIGTERM, then SIGKILL after the stop timeout) and kiln exits 0: Ctrl-C is how a foreground run is meant to end.
    /// </summary>
    private static async Task<int> ForegroundAsync(
        CommandContext context, FirecrackerHypervisor hypervisor, RunRequest request, CancellationToken cancellationToken)
    {
        if (context.Output.Interactive)
            Console.Error.WriteLine($"kiln: {request.Name} is running (pid {hypervisor.Pid}); Ctrl-C stops it.");
        using var stdout = Console.OpenStandardOutput();
        var root = context.Root;
        await ConsoleFollower.FollowAsync(
            hypervisor.ConsolePath, new RawSink(stdout),
            async ct => Sandboxes.IsLive(hypervisor.State) && await StillLiveAsync(root, request.Name, ct),
            context.Time, cancellationToken);

        var interrupted = cancellationToken.IsCancellationRequested;
        await context.Output.ProgressAsync($"Stopping {request.Name}…", () => hypervisor.StopAsync(CancellationToken.None));
        if (context.Output.Interactive || interrupted)
            Console.Error.WriteLine(interrupted ? $"kiln: stopped {request.Name}." : $"kiln: {request.Name} exited.");
        if (request.Remove)
            await hypervisor.CleanupAsync(CancellationToken.None);
        return ExitCodes.Success;
    }

    private static async Task<bool> StillLiveAsync(string root, string name, CancellationToken cancellationToken)
    {
        try
        {
            // Another kiln (stop, or a kill behind our back) may have ended it: the catalog reads the state on disk.
            var info = await SandboxCatalog.GetAsync(root, name, cancellationToken);
            return Sandboxes.IsLive(info.State);
        }
        catch (SandboxNotFoundException)
        {
            return false;
        }
    }

    internal static async Task<bool> ExistsAsync(string root, string name, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(root))
            return false;
        try
        {
            await SandboxCatalog.GetAsync(root, name, cancellationToken);
            return true;
        }
        catch (SandboxNotFoundException)
        {
            return Directory.Exists(Path.Combine(root, name));
        }
    }

    // The start failure is the error the user sees (a clean-up exception would replace it); what the clean-up could
    // not remove is named in a note, so the leftover is not silent.
    private static async Task CleanupAfterFailedStartAsync(Output output, FirecrackerHypervisor hypervisor)
    {
        try
        {
            await hypervisor.StopAsync(CancellationToken.None);
            await hypervisor.CleanupAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is SandboxException or IOException)
        {
            output.Note($"warning: cleaning up after the failed start left something behind: {e.Message}");
        }
    }
}
