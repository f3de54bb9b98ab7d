// Boot: the named steps (stale-files, the caller's preparation, [config-file], spawn, api-ready, the BootPlan's API
// steps, running), each a trace span. Any failure — an API answer, the VMM dying, a deadline, cancellation — kills
// the VMM, removes what this boot created and throws MicrovmBootException with the step, Firecracker's fault message
// and the tail of its log and output.
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>The prefix of every boot step's span name (the names tracing dashboards know).</summary>
    public const string StepSpanPrefix = "kiln.sandbox.start.";

    /// <summary>Spawns Firecracker, configures it as <paramref name="description"/> says and waits until the VM runs.</summary>
    /// <exception cref="MachineDescriptionException">The description is invalid (nothing was started).</exception>
    /// <exception cref="ArgumentException">The options are invalid (nothing was started).</exception>
    /// <exception cref="MicrovmBootException">A step failed; the VMM was killed and what the boot created removed.</exception>
    public static async Task<Microvm> BootAsync(MachineDescription description, MicrovmOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(options);
        if (description.Jail is { } netJail && options.NetworkNamespacePath is { } netns)
        {
            // A jailed VMM joins its network namespace through the jailer's own --netns, not nsenter.
            if (netJail.NetworkNamespacePath is { } jailNetns && jailNetns != netns)
                throw new MachineDescriptionException(nameof(MachineDescription.Jail), $"the jail's network namespace {jailNetns} is not the VMM's {netns}");
            description = description with { Jail = netJail with { NetworkNamespacePath = netns } };
            options = options with { NetworkNamespacePath = null };
        }
        description.Validate();
        if (description.Jail is { } jailSettings)
        {
            if (options.StartPath == MicrovmStartPath.ConfigFile)
                throw new MachineDescriptionException(nameof(MachineDescription.Jail), "a jailed microVM boots through the API, not --config-file");
            options = JailedOptions(options, jailSettings);
        }
        options.Validate();
        var apiDescription = description.Jail is null ? description : InJail(description).Description;
        var logger = options.CreateLogger();
        var time = options.TimeProvider;
        var vmId = options.Id ?? "?";
        var created = new List<string>();
        using var socketAppeared = new SemaphoreSlim(0);
        FileSystemWatcher? watcher = null;
        Microvm? vm = null;
        var step = "prepare";

        var steps = new List<BootStep>
        {
            // Before anything is created or spawned: an unsupported Firecracker, or one too old for a feature the
            // description asks for, is refused with a typed error (the answer is cached per binary).
            new("version", ct => FirecrackerVersionProbe.EnsureSupportedAsync(options.FirecrackerPath, RequiredFeatures(description), ct)),
            new("stale-files", _ => RemoveStaleFiles(description, options, created)),
        };
        steps.AddRange(options.Preparation);
        if (options.StartPath == MicrovmStartPath.ConfigFile)
        {
            steps.Add(new("config-file", async ct =>
            {
                await ConfigFile.WriteAsync(description, options.EffectiveConfigFilePath, ct).ConfigureAwait(false);
                created.Add(options.EffectiveConfigFilePath);
                if (description.MmdsDocument is { } document)
                {
                    // A config file has no metadata key: Firecracker takes the first document as --metadata.
                    await File.WriteAllTextAsync(MetadataPath(options), document.ToJsonString(), ct).ConfigureAwait(false);
                    created.Add(MetadataPath(options));
                }
            }));
        }
        steps.Add(new("spawn", async ct =>
        {
            if (description.Jail is not null)
            {
                var jailed = await LaunchJailedAsync(description, options, ct).ConfigureAwait(false);
                vm = new Microvm(options, logger, jailed.Process, MicrovmState.Starting, description) { _jail = jailed };
                // The socket's directory exists only now, inside the jail; a socket made before the watch is found by
                // the readiness probe's own look.
                watcher = new FileSystemWatcher(Path.GetDirectoryName(options.SocketPath)!, Path.GetFileName(options.SocketPath))
                {
                    NotifyFilter = NotifyFilters.FileName,
                };
                watcher.Created += (_, _) => socketAppeared.Release();
                watcher.EnableRaisingEvents = true;
                VmLog.Spawned(logger, vmId, jailed.Pid, options.Ownership);
                if (options.Spawned is { } jailSpawned)
                    await jailSpawned(vm, ct).ConfigureAwait(false);
                return;
            }

            // Watching before the spawn: the socket's creation cannot slip between a check and the wait.
            var socketPath = Path.GetFullPath(options.SocketPath);
            watcher = new FileSystemWatcher(Path.GetDirectoryName(socketPath)!, Path.GetFileName(socketPath))
            {
                NotifyFilter = NotifyFilters.FileName,
            };
            watcher.Created += (_, _) => socketAppeared.Release();
            watcher.Renamed += (_, _) => socketAppeared.Release();
            watcher.EnableRaisingEvents = true;
            var arguments = new VmmArguments(options.SocketPath).WithId(options.Id).WithLog(options.LogPath);
            if (options.StartPath == MicrovmStartPath.ConfigFile)
            {
                arguments = arguments with
                {
                    ConfigFilePath = options.EffectiveConfigFilePath,
                    MetadataPath = description.MmdsDocument is null ? null : MetadataPath(options),
                };
            }
            string? input = null;
            if (options.Ownership == VmmOwnership.Detached && options.ConsoleInputPath is { } fifo)
            {
                if (!File.Exists(fifo))
                    created.Add(fifo);
                Kiln.Interop.FileNodes.CreateFifo(fifo);
                input = fifo;
            }
            var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
            {
                ExecutablePath = options.FirecrackerPath,
                Arguments = arguments,
                OutputPath = options.ConsolePath,
                Detached = options.Ownership == VmmOwnership.Detached,
                InputPath = input,
                Environment = options.Environment,
                WorkingDirectory = options.WorkingDirectory,
                NetworkNamespacePath = options.NetworkNamespacePath,
            }, ct).ConfigureAwait(false);
            vm = new Microvm(options, logger, vmm, MicrovmState.Starting, description);
            VmLog.Spawned(logger, vmId, vmm.Pid, options.Ownership);
            if (options.Spawned is { } spawned)
                await spawned(vm, ct).ConfigureAwait(false);
        }));
        steps.Add(new("api-ready", ct => Readiness.WaitForApiAsync(vm!._vmm, vm.Client, options.SocketPath, socketAppeared,
            options.ApiReadyTimeout, time, ct)));
        if (options.StartPath == MicrovmStartPath.Api)
            steps.AddRange(BootPlan.For(apiDescription).Bind(() => vm!.Client)); // the client exists once spawned
        steps.Add(new("running", ct => Readiness.WaitForRunningAsync(vm!._vmm, vm.Client, options.BootTimeout, time, ct)));

        try
        {
            foreach (var bootStep in steps)
            {
                step = bootStep.Name;
                using var stepActivity = KilnTelemetry.ActivitySource.StartActivity(StepSpanPrefix + bootStep.Name);
                var stepStart = time.GetTimestamp();
                await bootStep.Run(cancellationToken).ConfigureAwait(false);
                VmLog.StepDone(logger, vmId, bootStep.Name, time.GetElapsedTime(stepStart).TotalMilliseconds);
            }
        }
        catch (Exception e)
        {
            watcher?.Dispose();
            var tail = "";
            if (vm is not null)
            {
                await vm._vmm.KillAsync(CancellationToken.None).ConfigureAwait(false);
                tail = FailureTail(vm._vmm.ReadOutputTail(), options.LogPath is null ? "" : VmmProcess.ReadFileTail(options.LogPath, 32));
                vm._state = MicrovmState.Exited;
                if (vm._jail is { } jail)
                    await jail.CleanupAsync(time, CancellationToken.None).ConfigureAwait(false);
                await vm.ReleaseAsync().ConfigureAwait(false);
                Interlocked.Exchange(ref vm._disposed, 1);
            }
            DeleteFile(options.SocketPath);
            foreach (var file in created)
                DeleteFile(file);
            var reason = e is OperationCanceledException && cancellationToken.IsCancellationRequested ? "cancelled" : e.Message;
            throw new MicrovmBootException(step, $"The microVM failed to boot at step '{step}': {reason}",
                MicrovmBootException.FindFault(e), tail, e);
        }
        watcher?.Dispose();
        vm!._state = MicrovmState.Running;
        return vm;
    }

    /// <summary>The Firecracker features a description needs beyond the oldest supported release.</summary>
    internal static IEnumerable<FirecrackerFeature> RequiredFeatures(MachineDescription description)
    {
        if (description.MemoryHotplug is not null)
            yield return FirecrackerFeature.MemoryHotplug;
    }

    /// <summary>What a failed boot reports of the VMM: its own log (why it refused) and its output (panics, the console).</summary>
    internal static string FailureTail(string output, string log) => (output.Length, log.Length) switch
    {
        (_, 0) => output,
        (0, _) => log,
        _ => $"{log.TrimEnd('\n')}\n--- output ---\n{output}",
    };

    private static Task RemoveStaleFiles(MachineDescription description, MicrovmOptions options, List<string> created)
    {
        // Firecracker refuses an API socket path that exists, and leaves its sockets behind when killed.
        DeleteFile(options.SocketPath);
        if (description.Vsock is { } vsock)
        {
            if (File.Exists(vsock.UdsPath))
                File.Delete(vsock.UdsPath);
            // Firecracker binds it at PUT /vsock and never removes it, so a boot failing after that step would leave
            // it behind (found by the fault suite: tests/Kiln.Tests/Reliability/StartFaultTests).
            created.Add(vsock.UdsPath);
        }
        if (!File.Exists(options.ConsolePath))
            created.Add(options.ConsolePath);
        // A jail's socket and log are inside its chroot: the jail clears a stale tree and creates the log itself.
        if (options.LogPath is { } log && description.Jail is null)
        {
            // A fresh file per boot (the last one kept as .1), created here so that no Firecracker version's
            // open-without-create or write-from-offset-0 can fail or garble it.
            if (File.Exists(log))
                File.Move(log, log + ".1", overwrite: true);
            // Shared: File.Create's FileShare.None takes .NET's exclusive advisory lock, which made the start fail
            // while anything (kiln logs -f, a test) was reading the previous log (found by StartFaultTests).
            new FileStream(log, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete).Dispose();
            created.Add(log);
        }
        return Task.CompletedTask;
    }

    internal static void DeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private static string MetadataPath(MicrovmOptions options) => options.EffectiveConfigFilePath + ".mmds.json";
}
