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
        description.Validate();
        options.Validate();
        var logger = options.CreateLogger();
        var time = options.TimeProvider;
        var vmId = options.Id ?? "?";
        var created = new List<string>();
        using var socketAppeared = new SemaphoreSlim(0);
        FileSystemWatcher? watcher = null;
        Microvm? vm = null;
        var step = "prepare";

        var steps = new List<BootStep> { new("stale-files", _ => RemoveStaleFiles(description, options, created)) };
        steps.AddRange(options.Preparation);
        if (options.StartPath == MicrovmStartPath.ConfigFile)
        {
            steps.Add(new("config-file", async ct =>
            {
                await ConfigFile.WriteAsync(description, options.EffectiveConfigFilePath, ct).ConfigureAwait(false);
                created.Add(options.EffectiveConfigFilePath);
            }));
        }
        steps.Add(new("spawn", async ct =>
        {
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
                arguments = arguments with { ConfigFilePath = options.EffectiveConfigFilePath };
            var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
            {
                ExecutablePath = options.FirecrackerPath,
                Arguments = arguments,
                OutputPath = options.ConsolePath,
                Detached = options.Ownership == VmmOwnership.Detached,
                Environment = options.Environment,
                WorkingDirectory = options.WorkingDirectory,
            }, ct).ConfigureAwait(false);
            vm = new Microvm(options, logger, vmm, MicrovmState.Starting, description);
            VmLog.Spawned(logger, vmId, vmm.Pid, options.Ownership);
            if (options.Spawned is { } spawned)
                await spawned(vm, ct).ConfigureAwait(false);
        }));
        steps.Add(new("api-ready", ct => Readiness.WaitForApiAsync(vm!._vmm, vm.Client, options.SocketPath, socketAppeared,
            options.ApiReadyTimeout, time, ct)));
        if (options.StartPath == MicrovmStartPath.Api)
            steps.AddRange(BootPlan.For(description).Bind(() => vm!.Client)); // the client exists once spawned
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
        if (description.Vsock is { } vsock && File.Exists(vsock.UdsPath))
            File.Delete(vsock.UdsPath);
        if (!File.Exists(options.ConsolePath))
            created.Add(options.ConsolePath);
        if (options.LogPath is { } log)
        {
            // A fresh file per boot (the last one kept as .1), created here so that no Firecracker version's
            // open-without-create or write-from-offset-0 can fail or garble it.
            if (File.Exists(log))
                File.Move(log, log + ".1", overwrite: true);
            File.Create(log).Dispose();
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
}
