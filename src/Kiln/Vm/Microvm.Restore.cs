// Restore: the second way to make a microVM. Steps: stale-files, the caller's preparation, spawn, api-ready,
// drive-bindings (only for a clone: its own copies bound over the recorded drive paths in the VMM's private mount
// namespace), snapshot-load (PUT /snapshot/load, mem_backend File, resume_vm), running. The failure rule is the
// cold boot's: kill the VMM, remove what this restore created, throw MicrovmBootException naming the step with
// Firecracker's fault message and the tail of its log and output. Firecracker itself ends after a failed load.
using Kiln.Api;
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>
    /// Spawns Firecracker, loads <paramref name="snapshot"/> with guest memory mapped privately from its memory file
    /// (so clones of one snapshot share its pages until they write), and waits until the VM runs (or, without
    /// <see cref="RestoreOptions.Resume"/>, is Paused).
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid (nothing was started).</exception>
    /// <exception cref="MicrovmBootException">A step failed; the VMM was killed and what the restore created removed.</exception>
    public static Task<Microvm> RestoreAsync(SnapshotFiles snapshot, MicrovmOptions options, RestoreOptions? restore = null,
        CancellationToken cancellationToken = default) =>
        RestoreAsync(snapshot, options, restore ?? new RestoreOptions(), description: null, cancellationToken);

    internal static async Task<Microvm> RestoreAsync(SnapshotFiles snapshot, MicrovmOptions options, RestoreOptions restore,
        MachineDescription? description, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(snapshot.StatePath, nameof(snapshot));
        ArgumentException.ThrowIfNullOrEmpty(snapshot.MemoryPath, nameof(snapshot));
        options.Validate();
        restore.Validate();
        if (options.StartPath == MicrovmStartPath.ConfigFile)
            throw new ArgumentException("A restore loads a snapshot through the API; a config file cannot.", nameof(options));
        var logger = options.CreateLogger();
        var time = options.TimeProvider;
        var vmId = options.Id ?? "?";
        var created = new List<string>();
        using var socketAppeared = new SemaphoreSlim(0);
        FileSystemWatcher? watcher = null;
        Microvm? vm = null;
        var step = "prepare";

        var steps = new List<BootStep> { new("stale-files", _ => RemoveStaleRestoreFiles(options, restore, created)) };
        steps.AddRange(options.Preparation);
        steps.Add(new("spawn", async ct =>
        {
            var socketPath = Path.GetFullPath(options.SocketPath);
            watcher = new FileSystemWatcher(Path.GetDirectoryName(socketPath)!, Path.GetFileName(socketPath))
            {
                NotifyFilter = NotifyFilters.FileName,
            };
            watcher.Created += (_, _) => socketAppeared.Release();
            watcher.Renamed += (_, _) => socketAppeared.Release();
            watcher.EnableRaisingEvents = true;
            var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
            {
                ExecutablePath = options.FirecrackerPath,
                Arguments = new VmmArguments(options.SocketPath).WithId(options.Id).WithLog(options.LogPath),
                OutputPath = options.ConsolePath,
                Detached = options.Ownership == VmmOwnership.Detached,
                Environment = options.Environment,
                WorkingDirectory = options.WorkingDirectory,
                PrivateMountNamespace = restore.DriveBindings.Count > 0,
                NetworkNamespacePath = options.NetworkNamespacePath,
            }, ct).ConfigureAwait(false);
            vm = new Microvm(options, logger, vmm, MicrovmState.Starting, description);
            VmLog.Spawned(logger, vmId, vmm.Pid, options.Ownership);
            if (options.Spawned is { } spawned)
                await spawned(vm, ct).ConfigureAwait(false);
        }));
        steps.Add(new("api-ready", ct => Readiness.WaitForApiAsync(vm!._vmm, vm.Client, options.SocketPath, socketAppeared,
            options.ApiReadyTimeout, time, ct)));
        if (restore.DriveBindings.Count > 0)
        {
            steps.Add(new("drive-bindings", async ct =>
            {
                foreach (var binding in restore.DriveBindings)
                    await MountNamespace.BindAsync(vm!._vmm, binding.Source, binding.RecordedPath, ct).ConfigureAwait(false);
            }));
        }
        steps.Add(new(SnapshotLoadStep, ct => vm!.Client.LoadSnapshotAsync(restore.ToLoadParams(snapshot), ct)));
        if (restore.Resume)
            steps.Add(new("running", ct => Readiness.WaitForRunningAsync(vm!._vmm, vm.Client, options.BootTimeout, time, ct)));

        try
        {
            foreach (var restoreStep in steps)
            {
                step = restoreStep.Name;
                using var stepActivity = KilnTelemetry.ActivitySource.StartActivity(RestoreSpanPrefix + restoreStep.Name);
                var stepStart = time.GetTimestamp();
                await restoreStep.Run(cancellationToken).ConfigureAwait(false);
                VmLog.StepDone(logger, vmId, restoreStep.Name, time.GetElapsedTime(stepStart).TotalMilliseconds);
            }
        }
        catch (Exception e)
        {
            watcher?.Dispose();
            var tail = "";
            if (vm is not null)
            {
                if (step == SnapshotLoadStep && e is FirecrackerApiException)
                {
                    // Firecracker answers a refused load, logs why (main's RunWithApiError) and exits 1 on its own: a
                    // short, bounded wait for that exit keeps the reason in the tail instead of cutting it off.
                    try
                    {
                        await vm._vmm.Exited.WaitAsync(RefusedLoadExitGrace, time, CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                    }
                }
                await vm._vmm.KillAsync(CancellationToken.None).ConfigureAwait(false);
                tail = FailureTail(vm._vmm.ReadOutputTail(), options.LogPath is null ? "" : VmmProcess.ReadFileTail(options.LogPath, 32));
                vm._state = MicrovmState.Exited;
                await vm.ReleaseAsync().ConfigureAwait(false);
                Interlocked.Exchange(ref vm._disposed, 1);
            }
            DeleteFile(options.SocketPath);
            foreach (var file in created)
                DeleteFile(file);
            var reason = e is OperationCanceledException && cancellationToken.IsCancellationRequested ? "cancelled" : e.Message;
            throw new MicrovmBootException(step, $"The microVM failed to restore at step '{step}': {reason}",
                MicrovmBootException.FindFault(e), tail, e);
        }
        watcher?.Dispose();
        vm!._state = restore.Resume ? MicrovmState.Running : MicrovmState.Paused;
        return vm;
    }

    /// <summary>The prefix of every restore step's span name.</summary>
    public const string RestoreSpanPrefix = "kiln.vm.restore.";

    /// <summary>The restore step that loads the snapshot.</summary>
    public const string SnapshotLoadStep = "snapshot-load";

    /// <summary>How long a VMM that refused a load is given to log why and exit on its own before it is killed.</summary>
    private static readonly TimeSpan RefusedLoadExitGrace = TimeSpan.FromSeconds(2);

    private static Task RemoveStaleRestoreFiles(MicrovmOptions options, RestoreOptions restore, List<string> created)
    {
        DeleteFile(options.SocketPath);
        if (restore.VsockUdsPath is { } vsock)
        {
            // Firecracker binds it during the load and refuses a path that exists; it leaves it behind when killed.
            DeleteFile(vsock);
            created.Add(vsock);
        }
        if (!File.Exists(options.ConsolePath))
            created.Add(options.ConsolePath);
        if (options.LogPath is { } log)
        {
            if (File.Exists(log))
                File.Move(log, log + ".1", overwrite: true);
            File.Create(log).Dispose();
            created.Add(log);
        }
        return Task.CompletedTask;
    }
}
