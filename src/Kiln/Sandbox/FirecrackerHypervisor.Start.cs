// Start: the boot sequence as a list of named steps (each a trace span and, on failure, the step the exception
// names). Any failure — an API answer, the VMM dying, a deadline, cancellation — kills the VMM, removes what this
// start created, and throws SandboxStartException with Firecracker's fault message and the tail of its output.
using System.Diagnostics;
using Kiln.Api;
using Kiln.Vm;
using Kiln.Vmm;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>The longest pause between two readiness probes that found the socket but no listener.</summary>
    private static readonly TimeSpan MaxProbeBackoff = TimeSpan.FromMilliseconds(50);

    private async Task UnsafeStartAsync(CancellationToken cancellationToken)
    {
        if (_vmm is not null)
            await ReleaseVmmAsync().ConfigureAwait(false); // the handles of a VMM that ended on its own
        var paths = Paths;
        var config = Config;
        var previousState = _state;
        var previousStartedAt = StartedAt;
        var created = new List<string>();
        using var socketAppeared = new SemaphoreSlim(0);
        FileSystemWatcher? watcher = null;
        VmmProcess? vmm = null;

        KilnTelemetry.Starts.Add(1);
        using var activity = KilnTelemetry.ActivitySource.StartActivity("kiln.sandbox.start");
        activity?.SetTag("kiln.sandbox.id", Id);
        var t0 = _time.GetTimestamp();
        var step = "prepare";
        _state = SandboxState.Starting;

        var steps = new List<BootStep>
        {
            // Before anything is created or spawned: an unsupported Firecracker, or one too old for a feature the
            // configuration asks for, is refused with a typed error (the answer is cached per binary).
            new("version", ct => FirecrackerVersionProbe.EnsureSupportedAsync(config.FirecrackerPath,
                config.MemoryHotplug is null ? [] : [FirecrackerFeature.MemoryHotplug], ct)),
            new("stale-files", _ =>
            {
                // Firecracker refuses an API socket path that exists and leaves its sockets behind when killed.
                DeleteFile(paths.SocketPath);
                foreach (var vsock in _devices.OfType<VsockDevice>())
                {
                    if (File.Exists(vsock.UdsPath))
                        File.Delete(vsock.UdsPath);
                }
                if (!File.Exists(paths.ConsolePath))
                    created.Add(paths.ConsolePath);
                // Firecracker's log gets a fresh file per start (the last one is kept as .1), created here so that no
                // Firecracker version's open-without-create or write-from-offset-0 can fail or garble it.
                if (File.Exists(paths.VmmLogPath))
                    File.Move(paths.VmmLogPath, paths.PreviousVmmLogPath, overwrite: true);
                File.Create(paths.VmmLogPath).Dispose();
                created.Add(paths.VmmLogPath);
                return Task.CompletedTask;
            }),
            new("placeholders", _ =>
            {
                created.AddRange(_pool!.CreatePlaceholders());
                return Task.CompletedTask;
            }),
            new("spawn", async ct =>
            {
                // Watching before the spawn: the socket's creation cannot slip between a check and the wait.
                watcher = new FileSystemWatcher(paths.Directory, Path.GetFileName(paths.SocketPath))
                {
                    NotifyFilter = NotifyFilters.FileName,
                };
                watcher.Created += (_, _) => socketAppeared.Release();
                watcher.Renamed += (_, _) => socketAppeared.Release();
                watcher.EnableRaisingEvents = true;
                string? input = null;
                if (_ownership == VmmOwnership.Detached)
                {
                    // A detached VMM outlives us: its serial input is a FIFO anyone allowed into the directory can write.
                    if (!File.Exists(paths.ConsoleInputPath))
                        created.Add(paths.ConsoleInputPath);
                    Kiln.Interop.FileNodes.CreateFifo(paths.ConsoleInputPath);
                    input = paths.ConsoleInputPath;
                }
                vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
                {
                    ExecutablePath = config.FirecrackerPath,
                    Arguments = new VmmArguments(paths.SocketPath).WithId(InstanceId(Id)).WithLog(paths.VmmLogPath),
                    OutputPath = paths.ConsolePath,
                    Detached = _ownership == VmmOwnership.Detached,
                    InputPath = input,
                    Environment = _options.Environment,
                    WorkingDirectory = paths.Directory,
                }, ct).ConfigureAwait(false);
                _vmm = vmm;
                _client = NewClient();
                StartedAt = _time.GetUtcNow();
                Log.VmmSpawned(_logger, Id, vmm.Pid, _ownership);
                // Recorded at once, so a driver in another process can find (and stop) it even if this one dies now.
                await PersistAsync(ct).ConfigureAwait(false);
            }),
            new("api-ready", ct => WaitForApiAsync(vmm!, socketAppeared, ct)),
            new("machine-config", ct => _client!.PutMachineConfigurationAsync(
                new MachineConfiguration { VcpuCount = config.VcpuCount, MemSizeMib = config.MemoryMiB }, ct)),
            new("boot-source", ct => _client!.PutGuestBootSourceAsync(new BootSource
            {
                KernelImagePath = Path.GetFullPath(config.KernelPath),
                InitrdPath = config.InitrdPath is null ? null : Path.GetFullPath(config.InitrdPath),
                BootArgs = BootArguments(config),
            }, ct)),
        };
        if (config.ImagePath is not null)
        {
            // A non-root drive (seed): Firecracker's root device would add root=/dev/vda, which cannot boot a
            // partitioned image; root= comes from the boot arguments instead.
            steps.Add(new("rootfs", ct => _client!.PutGuestDriveByIDAsync(new Drive
            {
                DriveId = RootfsDriveId,
                PathOnHost = Path.GetFullPath(config.ImagePath),
                IsRootDevice = false,
                IsReadOnly = config.ImageReadOnly,
            }, ct)));
        }
        if (_pool!.Size > 0)
        {
            steps.Add(new("block-pool", async ct =>
            {
                foreach (var slot in _pool.Slots)
                {
                    await _client!.PutGuestDriveByIDAsync(new Drive
                    {
                        DriveId = slot.DriveId,
                        PathOnHost = slot.PlaceholderPath,
                        IsRootDevice = false,
                        IsReadOnly = false,
                    }, ct).ConfigureAwait(false);
                }
            }));
        }
        if (config.MemoryHotplug is { } hotplug)
        {
            steps.Add(new("memory-hotplug", ct => _client!.PutMemoryHotplugAsync(new MemoryHotplugConfig
            {
                TotalSizeMib = hotplug.TotalSizeMiB,
                SlotSizeMib = hotplug.SlotSizeMiB,
                BlockSizeMib = hotplug.BlockSizeMiB,
            }, ct)));
        }
        var driveCount = 0;
        var netCount = 0;
        for (var i = 0; i < _devices.Count; i++)
        {
            var device = _devices[i];
            steps.Add(device switch
            {
                BlockDevice block => new($"device-{i}-block", ct => _client!.PutGuestDriveByIDAsync(new Drive
                {
                    DriveId = block.Id ?? $"disk_{driveCount++}",
                    PathOnHost = Path.GetFullPath(block.HostPath),
                    IsRootDevice = false,
                    IsReadOnly = block.ReadOnly,
                }, ct)),
                NetworkDevice net => new($"device-{i}-network", ct => _client!.PutGuestNetworkInterfaceByIDAsync(new NetworkInterface
                {
                    IfaceId = net.Id ?? $"eth{netCount++}",
                    HostDevName = net.TapName,
                    GuestMac = net.MacAddress,
                    RxRateLimiter = Limiter(net.RxBandwidth, net.RxOps),
                    TxRateLimiter = Limiter(net.TxBandwidth, net.TxOps),
                }, ct)),
                VsockDevice vsock => new($"device-{i}-vsock", ct => _client!.PutGuestVsockAsync(new Vsock
                {
                    GuestCid = vsock.GuestCid,
                    UdsPath = Path.GetFullPath(vsock.UdsPath),
                }, ct)),
                _ => throw new HypervisorNotSupportedException(device.GetType().Name, "Firecracker supports block, network and vsock devices"),
            });
        }
        steps.Add(new("instance-start", ct => _client!.CreateSyncActionAsync(new InstanceActionInfo { ActionType = InstanceActionType.InstanceStart }, ct)));
        steps.Add(new("running", ct => WaitForRunningAsync(vmm!, ct)));

        try
        {
            foreach (var bootStep in steps)
            {
                step = bootStep.Name;
                using var stepActivity = KilnTelemetry.ActivitySource.StartActivity("kiln.sandbox.start." + bootStep.Name);
                var stepStart = _time.GetTimestamp();
                await bootStep.Run(cancellationToken).ConfigureAwait(false);
                Log.StepDone(_logger, Id, bootStep.Name, _time.GetElapsedTime(stepStart).TotalMilliseconds);
            }
        }
        catch (Exception e)
        {
            watcher?.Dispose();
            KilnTelemetry.StartFailures.Add(1, new KeyValuePair<string, object?>("step", step));
            activity?.SetStatus(ActivityStatusCode.Error, step);
            Log.StartFailed(_logger, e, Id, step);
            var tail = "";
            if (vmm is not null)
            {
                await vmm.KillAsync(CancellationToken.None).ConfigureAwait(false);
                tail = FailureTail(vmm.ReadOutputTail(), VmmProcess.ReadFileTail(paths.VmmLogPath, 32));
            }
            await ReleaseVmmAsync().ConfigureAwait(false);
            DeleteFile(paths.SocketPath);
            foreach (var file in created)
                DeleteFile(file);
            _state = previousState;
            StartedAt = previousStartedAt;
            await PersistAsync(CancellationToken.None).ConfigureAwait(false);
            var fault = FindFault(e);
            var reason = e is OperationCanceledException && cancellationToken.IsCancellationRequested ? "cancelled" : e.Message;
            throw new SandboxStartException(step,
                $"Sandbox '{Id}' failed to start at step '{step}': {reason}{(fault is null || reason.Contains(fault, StringComparison.Ordinal) ? "" : $" (Firecracker: {fault})")}",
                fault, tail, e)
            { SandboxId = SandboxId };
        }
        watcher?.Dispose();
        // The queued devices stay: they are the sandbox's boot configuration, replayed by every start (also by a
        // driver in another process, from the state file), not a one-shot queue.
        _state = SandboxState.Running;
        WatchForUnexpectedExit(vmm!);
        await PersistAsync(CancellationToken.None).ConfigureAwait(false);
        var elapsed = _time.GetElapsedTime(t0).TotalMilliseconds;
        KilnTelemetry.StartDuration.Record(elapsed);
        Log.Started(_logger, Id, elapsed);
    }

    /// <summary>What a failed start reports of the VMM: its own log (why it refused) and its output (panics, the console).</summary>
    internal static string FailureTail(string output, string log) => (output.Length, log.Length) switch
    {
        (_, 0) => output,
        (0, _) => log,
        _ => $"{log.TrimEnd('\n')}\n--- output ---\n{output}",
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

    /// <summary>The boot arguments: defaults, root=/dev/vda1 with an image (it is the first drive), configured ones.</summary>
    internal static string BootArguments(HypervisorConfig config) =>
        KernelCommandLine.Serialize(KernelCommandLine.Merge(
            config.KernelParams.Select(p => (p.Key, p.Value)),
            config.ImagePath is null ? null : "/dev/vda1"));

    /// <summary>
    /// Waits until GET / answers: woken by the socket's creation (inotify, via FileSystemWatcher), racing the
    /// process's exit, bounded by ApiReadyTimeout on the driver's clock. Only when the socket exists but refuses
    /// (bound, not yet listening) is there a retry, after a short growing pause.
    /// </summary>
    private async Task WaitForApiAsync(VmmProcess vmm, SemaphoreSlim socketAppeared, CancellationToken cancellationToken)
    {
        var timeout = Config.ApiReadyTimeout;
        using var deadline = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var backoff = TimeSpan.FromMilliseconds(0.5);
        var client = _client!;
        while (true)
        {
            Task wake;
            if (File.Exists(Paths.SocketPath))
            {
                try
                {
                    await client.DescribeInstanceAsync(linked.Token).ConfigureAwait(false);
                    return;
                }
                catch (FirecrackerConnectionException) when (!linked.IsCancellationRequested && !vmm.State.HasEnded)
                {
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"firecracker's API did not answer within {timeout.TotalSeconds:0.###} s");
                }
                wake = Task.Delay(backoff, _time, linked.Token);
                backoff = backoff * 2 < MaxProbeBackoff ? backoff * 2 : MaxProbeBackoff;
            }
            else
            {
                wake = socketAppeared.WaitAsync(linked.Token);
            }
            await Task.WhenAny(wake, vmm.Exited).ConfigureAwait(false);
            if (vmm.Exited.IsCompleted)
                throw new VmmExitedException(await vmm.Exited.ConfigureAwait(false), "waiting for its API socket");
            cancellationToken.ThrowIfCancellationRequested();
            if (deadline.IsCancellationRequested)
                throw new TimeoutException($"firecracker's API did not answer within {timeout.TotalSeconds:0.###} s");
        }
    }

    /// <summary>After InstanceStart: until GET / says Running, racing the process's exit, bounded by BootTimeout.</summary>
    private async Task WaitForRunningAsync(VmmProcess vmm, CancellationToken cancellationToken)
    {
        var timeout = Config.BootTimeout;
        using var deadline = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var backoff = TimeSpan.FromMilliseconds(0.5);
        try
        {
            while (true)
            {
                var info = await _client!.DescribeInstanceAsync(linked.Token).ConfigureAwait(false);
                if (info.State == InstanceState.Running)
                    return;
                await Task.WhenAny(Task.Delay(backoff, _time, linked.Token), vmm.Exited).ConfigureAwait(false);
                if (vmm.Exited.IsCompleted)
                    throw new VmmExitedException(await vmm.Exited.ConfigureAwait(false), "waiting for the VM to run");
                linked.Token.ThrowIfCancellationRequested();
                backoff = backoff * 2 < MaxProbeBackoff ? backoff * 2 : MaxProbeBackoff;
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the VM did not reach Running within {timeout.TotalSeconds:0.###} s");
        }
    }

    private static RateLimiter? Limiter(TokenBucketLimit? bandwidth, TokenBucketLimit? ops) =>
        bandwidth is null && ops is null ? null : new RateLimiter { Bandwidth = Bucket(bandwidth), Ops = Bucket(ops) };

    private static TokenBucket? Bucket(TokenBucketLimit? limit) =>
        limit is null ? null : new TokenBucket { Size = limit.Size, RefillTime = limit.RefillTimeMs, OneTimeBurst = limit.OneTimeBurst };

    private static string? FindFault(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is FirecrackerApiException api)
                return api.FaultMessage;
        }
        return null;
    }
}
