// Start: the sandbox as a machine description (seed kernel parameters, rootfs, placeholder pool, queued devices),
// booted through the Vm layer. The boot's steps are Microvm's; what is Kata's here is the placeholders step, the
// record written the moment the VMM runs, and the sandbox's start telemetry. A failed boot has already killed the VMM
// and removed its files; this removes the placeholders it made, puts the record back and throws SandboxStartException.
using System.Diagnostics;
using Kiln.Api;
using Kiln.Vm;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    private async Task UnsafeStartAsync(CancellationToken cancellationToken)
    {
        if (Config.Restore is { } restore)
        {
            await UnsafeRestoreAsync(restore, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (_vm is not null)
            await ReleaseVmAsync().ConfigureAwait(false); // the handles of a VMM that ended on its own
        var previousState = _state;
        var previousStartedAt = StartedAt;
        var placeholders = new List<string>();

        KilnTelemetry.Starts.Add(1);
        using var activity = KilnTelemetry.ActivitySource.StartActivity("kiln.sandbox.start");
        activity?.SetTag("kiln.sandbox.id", Id);
        var t0 = _time.GetTimestamp();
        _state = SandboxState.Starting;
        var networks = Networks;
        var network = NetworkPlan();
        var preparation = new List<BootStep>
        {
            new("placeholders", _ =>
            {
                placeholders.AddRange(_pool!.CreatePlaceholders());
                return Task.CompletedTask;
            }),
        };
        if (network is not null)
            preparation.Add(NetworkStep(networks, Config.Network!));
        var options = LaunchOptions(networks, network) with { Preparation = preparation };

        Microvm booted;
        try
        {
            booted = await Microvm.BootAsync(Describe(), options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var boot = e as MicrovmBootException;
            var step = boot?.Step ?? "prepare";
            KilnTelemetry.StartFailures.Add(1, new KeyValuePair<string, object?>("step", step));
            activity?.SetStatus(ActivityStatusCode.Error, step);
            Log.StartFailed(_logger, e, Id, step);
            _spawningSince = null;
            _vm = null; // the failed boot killed it and released its handles
            var cause = boot?.InnerException ?? e;
            var fault = boot?.FaultMessage;
            var reason = cause is OperationCanceledException && cancellationToken.IsCancellationRequested ? "cancelled" : cause.Message;
            // The start's own failure is the inner exception; what went wrong while cleaning up after it (the boot's
            // rollback, the placeholders, the network, the record) is attached (CleanupFailures), never in its place.
            var failure = CleanupFailures.Move(e, new SandboxStartException(step,
                $"Sandbox '{Id}' failed to start at step '{step}': {reason}{(fault is null || reason.Contains(fault, StringComparison.Ordinal) ? "" : $" (Firecracker: {fault})")}",
                fault, boot?.OutputTail ?? "", cause)
            { SandboxId = SandboxId });
            foreach (var file in placeholders)
                CleanupFailures.Run(failure, () => Microvm.DeleteFile(file));
            if (network is not null)
                await CleanupFailures.RunAsync(failure, () => networks.TearDownAsync(Id, CancellationToken.None)).ConfigureAwait(false);
            _state = previousState;
            StartedAt = previousStartedAt;
            // The record put back; when even that write fails (the file system that failed the start is full or
            // read-only), the start's error still goes to the caller with the write's attached (found by
            // DiskFaultTests). A record left saying Starting names a VMM that is gone: readers see Exited.
            await CleanupFailures.RunAsync(failure, () => PersistAsync(CancellationToken.None)).ConfigureAwait(false);
            throw failure;
        }
        _vm = booted;
        // The queued devices stay: they are the sandbox's boot configuration, replayed by every start (also by a
        // driver in another process, from the state file), not a one-shot queue.
        _state = SandboxState.Running;
        WatchForUnexpectedExit(booted);
        await PersistAsync(CancellationToken.None).ConfigureAwait(false);
        var elapsed = _time.GetElapsedTime(t0).TotalMilliseconds;
        KilnTelemetry.StartDuration.Record(elapsed);
        Log.Started(_logger, Id, elapsed);
    }

    /// <summary>
    /// Recorded before each launch: Starting, and since when (a VMM spawned from now on, running this firecracker on this
    /// sandbox's socket, is ours). An owner that dies between the launch and <c>Spawned</c>'s record leaves a VMM that
    /// another driver still finds by it; a detached one would otherwise run on with no record naming it.
    /// </summary>
    private Task RecordSpawningAsync(CancellationToken cancellationToken)
    {
        _spawningSince = Kiln.Host.ProcFs.TicksSinceBoot();
        return PersistAsync(cancellationToken);
    }

    /// <summary>
    /// The sandbox as Firecracker is to be configured: the seed's kernel parameters, the rootfs, the placeholder
    /// pool, the memory hot-plug region, then the queued devices, each under the boot step name it always had
    /// (<c>rootfs</c>, <c>block-pool</c>, <c>device-N-kind</c>).
    /// </summary>
    internal MachineDescription Describe()
    {
        var config = Config;
        var devices = new List<MachineDevice>();
        if (config.ImagePath is not null)
        {
            // A non-root drive (seed): Firecracker's root device would add root=/dev/vda, which cannot boot a
            // partitioned image; root= comes from the boot arguments instead.
            devices.Add(new MachineDrive(new Drive
            {
                DriveId = RootfsDriveId,
                PathOnHost = Path.GetFullPath(config.ImagePath),
                IsRootDevice = false,
                IsReadOnly = config.ImageReadOnly,
            }) { Step = "rootfs" });
        }
        foreach (var slot in _pool!.Slots)
        {
            devices.Add(new MachineDrive(new Drive
            {
                DriveId = slot.DriveId,
                PathOnHost = slot.PlaceholderPath,
                IsRootDevice = false,
                IsReadOnly = false,
            }) { Step = "block-pool" });
        }
        var network = NetworkPlan();
        if (network is not null)
        {
            // First among the interfaces, so the guest names it eth0, as the ip= argument says.
            devices.Add(new MachineNetworkInterface(new NetworkInterface
            {
                IfaceId = SandboxInterfaceId,
                HostDevName = network.TapName!,
                GuestMac = network.GuestMac,
            }) { Step = "network-interface" });
        }
        var driveCount = 0;
        var netCount = 0;
        for (var i = 0; i < _devices.Count; i++)
        {
            devices.Add(_devices[i] switch
            {
                BlockDevice block => new MachineDrive(new Drive
                {
                    DriveId = block.Id ?? $"disk_{driveCount++}",
                    PathOnHost = Path.GetFullPath(block.HostPath),
                    IsRootDevice = false,
                    IsReadOnly = block.ReadOnly,
                    RateLimiter = RateLimits.ToApi(block.Bandwidth, block.Ops),
                }) { Step = $"device-{i}-block" },
                NetworkDevice net => new MachineNetworkInterface(new NetworkInterface
                {
                    IfaceId = net.Id ?? $"eth{netCount++}",
                    HostDevName = net.TapName,
                    GuestMac = net.MacAddress,
                    RxRateLimiter = RateLimits.ToApi(net.RxBandwidth, net.RxOps),
                    TxRateLimiter = RateLimits.ToApi(net.TxBandwidth, net.TxOps),
                }) { Step = $"device-{i}-network" },
                VsockDevice vsock => new MachineVsock(new Vsock
                {
                    GuestCid = vsock.GuestCid,
                    UdsPath = Path.GetFullPath(vsock.UdsPath),
                }) { Step = $"device-{i}-vsock" },
                var other => throw new HypervisorNotSupportedException(other.GetType().Name, "Firecracker supports block, network and vsock devices"),
            });
        }
        return new MachineDescription
        {
            MachineConfig = new MachineConfiguration { VcpuCount = config.VcpuCount, MemSizeMib = config.MemoryMiB },
            BootSource = new BootSource
            {
                KernelImagePath = Path.GetFullPath(config.KernelPath),
                InitrdPath = config.InitrdPath is null ? null : Path.GetFullPath(config.InitrdPath),
                BootArgs = BootArguments(config, network?.KernelIpArgument),
            },
            Devices = devices,
            Mmds = network is not null && config.Metadata is { } metadata
                ? new MmdsConfig { NetworkInterfaces = [SandboxInterfaceId], Version = metadata.Version, Ipv4Address = metadata.Ipv4Address }
                : null,
            MmdsDocument = network is not null ? config.Metadata?.Document : null,
            Jail = config.Jail,
            MemoryHotplug = config.MemoryHotplug is { } hotplug
                ? new MemoryHotplugConfig { TotalSizeMib = hotplug.TotalSizeMiB, SlotSizeMib = hotplug.SlotSizeMiB, BlockSizeMib = hotplug.BlockSizeMiB }
                : null,
            Balloon = config.Balloon is { } balloon
                ? new Balloon
                {
                    AmountMib = balloon.InitialMiB,
                    DeflateOnOom = balloon.DeflateOnOom,
                    StatsPollingIntervalS = balloon.StatisticsIntervalSeconds,
                    FreePageHinting = balloon.FreePageHinting ? true : null,
                    FreePageReporting = balloon.FreePageReporting ? true : null,
                }
                : null,
        };
    }

    /// <summary>How the sandbox's microVM runs: its files in the sandbox directory, the driver's clock and logging.</summary>
    private MicrovmOptions MicrovmOptions() => new()
    {
        FirecrackerPath = Config.FirecrackerPath,
        SocketPath = Paths.SocketPath,
        ConsolePath = Paths.ConsolePath,
        LogPath = Paths.VmmLogPath,
        MetricsPath = Config.Metrics ? Paths.MetricsPath : null,
        Id = InstanceId(Id),
        WorkingDirectory = Paths.Directory,
        Ownership = _ownership,
        // A detached VMM outlives us: its serial input is a FIFO (kiln attach writes to it).
        ConsoleInputPath = _ownership == Kiln.Vmm.VmmOwnership.Detached ? Paths.ConsoleInputPath : null,
        ConsoleRotation = Config.ConsoleLimitBytes is { } limit ? Kiln.Vmm.OutputRotation.Default with { MaxFileBytes = limit } : Kiln.Vmm.OutputRotation.Default,
        // A daemonizing jail's VMM writes to /dev/null (its jailer's doing): it has no console to keep.
        ConsoleKeeper = _ownership == Kiln.Vmm.VmmOwnership.Detached && Config.Jail is not { Daemonize: true } ? _options.ConsoleKeeper : null,
        Environment = _options.Environment,
        StartPath = _options.StartPath,
        ApiReadyTimeout = Config.ApiReadyTimeout,
        BootTimeout = Config.BootTimeout,
        RequestTimeout = Config.RequestTimeout,
        StopTimeout = Config.StopTimeout,
        TimeProvider = _time,
        LoggerFactory = _options.LoggerFactory,
    };

    /// <summary>
    /// Firecracker's <c>--id</c> for a sandbox id. Firecracker takes letters, digits and '-' (anything else makes it
    /// panic: SIGABRT), while sandbox ids may also hold '.' and '_': those become '-'.
    /// </summary>
    public static string InstanceId(string sandboxId)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxId);
        return string.Create(sandboxId.Length, sandboxId, static (span, id) =>
        {
            for (var i = 0; i < id.Length; i++)
                span[i] = char.IsAsciiLetterOrDigit(id[i]) ? id[i] : '-';
        });
    }

    /// <summary>
    /// The boot arguments: defaults, root= with an image (the first drive: /dev/vda1 when the image is partitioned,
    /// /dev/vda when it is a bare filesystem, see <see cref="RootDevice"/>), the sandbox network's ip= (unless the
    /// configuration sets its own), configured ones (a configured root= wins).
    /// </summary>
    internal static string BootArguments(HypervisorConfig config, string? ipArgument = null)
    {
        var configured = config.KernelParams.Select(p => (p.Key, p.Value)).ToList();
        if (ipArgument is not null && !configured.Any(p => p.Key == "ip"))
            configured.Add(("ip", ipArgument["ip=".Length..]));
        return KernelCommandLine.Serialize(KernelCommandLine.Merge(
            configured,
            config.ImagePath is null ? null : RootDevice.Choose(config.ImagePath, configured).Device));
    }

    /// <summary>The Firecracker interface id of the sandbox network's interface (the guest's eth0).</summary>
    public const string SandboxInterfaceId = "sandbox_net";

    private Kiln.Host.Network.SandboxNetworks Networks => new(_options.Networks);

    /// <summary>What the sandbox's network will be (null: none), known before it is made.</summary>
    private Kiln.Host.Network.SandboxNetworkInfo? NetworkPlan() =>
        Config.Network is { Mode: not Kiln.Host.Network.NetworkMode.None } spec ? Networks.Plan(Id, spec) : null;
}
