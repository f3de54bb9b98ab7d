// Restore: the second way to make a microVM (under a jail: Microvm.RestoreJailed.cs). Steps: stale-files, the caller's preparation, spawn, api-ready,
// drive-bindings (only for a clone: its own copies bound over the recorded drive paths in the VMM's private mount
// namespace), snapshot-load (PUT /snapshot/load, mem_backend File, resume_vm: its 204 means Running). The steps run and fail
// as the cold boot's do (StartAttempt): kill the VMM, remove what this restore created, throw MicrovmBootException
// naming the step with Firecracker's fault message and the tail of its log and output. Firecracker itself ends after
// a failed load, so that one failure first waits briefly for it to exit and log why.
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
        if (restore.Jail is not null)
            return await RestoreJailedAsync(snapshot, options, restore, description, cancellationToken).ConfigureAwait(false);
        // Read-only drives are at their recorded paths already: only a clone's own copies are bound.
        var bindings = restore.DriveBindings.Where(b => !b.ReadOnly).ToList();
        var logger = options.CreateLogger();
        var time = options.TimeProvider;
        var attempt = new StartAttempt(options, logger, "restore", RestoreSpanPrefix)
        {
            BeforeKill = (vm, step, e) => step == SnapshotLoadStep && e is FirecrackerApiException
                ? AwaitRefusedLoadExitAsync(vm, time)
                : Task.CompletedTask,
        };

        var steps = new List<BootStep> { new("stale-files", _ => attempt.RemoveStaleFiles(restore.VsockUdsPath, freshLog: true)) };
        steps.AddRange(options.Preparation);
        steps.Add(new("spawn", async ct =>
        {
            // A detached restore gets the serial input FIFO a detached boot gets (kiln attach types into it).
            var launch = LaunchOptions(options, Arguments(options)) with
            {
                PrivateMountNamespace = bindings.Count > 0,
                InputPath = attempt.CreateConsoleInput(),
            };
            attempt.AddConsoleKeeperFiles();
            await attempt.SpawningAsync(ct).ConfigureAwait(false);
            var vmm = await VmmProcess.LaunchAsync(launch, ct).ConfigureAwait(false);
            attempt.Vm = new Microvm(options, logger, vmm, MicrovmState.Starting, description) { _restoredVsockPath = restore.VsockUdsPath };
            await attempt.SpawnedAsync(vmm.Pid, ct).ConfigureAwait(false);
        }));
        // The load is the first request: the API is ready once its socket takes a connection (no GET / probe).
        steps.Add(new("api-ready", ct => Readiness.WaitForListenerAsync(attempt.Vm._vmm, attempt.Vm.Client, options.SocketPath,
            options.ApiReadyTimeout, time, ct)));
        if (bindings.Count > 0)
        {
            steps.Add(new("drive-bindings", async ct =>
            {
                foreach (var binding in bindings)
                    await MountNamespace.BindAsync(attempt.Vm._vmm, binding.Source, binding.RecordedPath, ct).ConfigureAwait(false);
            }));
        }
        // With resume_vm, Firecracker resumes the VM before it answers the load and answers an error when the resume
        // fails (rpc_interface's load_snapshot), so a 204 means Running: no GET / poll after it.
        steps.Add(new(SnapshotLoadStep, ct => attempt.Vm.Client.LoadSnapshotAsync(restore.ToLoadParams(snapshot), ct)));

        return await attempt.RunAsync(steps, restore.Resume ? MicrovmState.Running : MicrovmState.Paused, cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>The prefix of every restore step's span name.</summary>
    public const string RestoreSpanPrefix = "kiln.vm.restore.";

    /// <summary>The restore step that loads the snapshot.</summary>
    public const string SnapshotLoadStep = "snapshot-load";

    /// <summary>How long a VMM that refused a load is given to log why and exit on its own before it is killed.</summary>
    private static readonly TimeSpan RefusedLoadExitGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Firecracker answers a refused load, logs why (main's RunWithApiError) and exits 1 on its own: a short, bounded
    /// wait for that exit before the kill keeps the reason in the failure's tail instead of cutting it off.
    /// </summary>
    private static async Task AwaitRefusedLoadExitAsync(Microvm vm, TimeProvider time)
    {
        try
        {
            await vm._vmm.Exited.WaitAsync(RefusedLoadExitGrace, time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }
}
