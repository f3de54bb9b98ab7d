// Restore under Firecracker's jailer (RestoreOptions.Jail). A jailed VMM sees only its chroot, so everything the load
// opens is put there first: the state and memory files at /snapshot/state and /snapshot/mem (shared: a hard link
// where the file system and their mode allow, so N clones still share the memory file's pages; never re-owned, as
// other VMMs use them), every drive the snapshot recorded at its recorded path inside the chroot (a jailed VM's
// /drives/<id>, or a plain VM's host path recreated there: that is how each clone finds its own copy at the one
// path the snapshot names), the vsock override at /vsock.sock (the caller's path a link to it), and the API socket,
// log and metrics FIFO as a jailed boot has them. Steps: stale-files, snapshot-files, the caller's preparation, spawn
// (the jail and the VMM), api-ready, snapshot-load; any failure kills the VMM and removes the chroot, mounts, cgroups
// and what the restore created (StartAttempt), naming the step.
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>The snapshot's state file as a jailed VMM sees it.</summary>
    internal const string JailedStatePath = "/snapshot/state";

    /// <summary>The snapshot's memory file as a jailed VMM sees it.</summary>
    internal const string JailedMemoryPath = "/snapshot/mem";

    private static async Task<Microvm> RestoreJailedAsync(SnapshotFiles snapshot, MicrovmOptions options, RestoreOptions restore,
        MachineDescription? description, CancellationToken cancellationToken)
    {
        var jail = restore.Jail!;
        // A jailed VMM joins its network namespace through the jailer's own --netns, not nsenter.
        if (options.NetworkNamespacePath is { } netns)
        {
            if (jail.NetworkNamespacePath is { } jailNetns && jailNetns != netns)
                throw new ArgumentException($"the jail's network namespace {jailNetns} is not the VMM's {netns}", nameof(restore));
            jail = jail with { NetworkNamespacePath = netns };
            options = options with { NetworkNamespacePath = null };
        }
        options = JailedOptions(options, jail);
        options.Validate();
        var logger = options.CreateLogger();
        var time = options.TimeProvider;
        var attempt = new StartAttempt(options, logger, "restore", RestoreSpanPrefix)
        {
            BeforeKill = (vm, step, e) => step == SnapshotLoadStep && e is Kiln.Api.FirecrackerApiException
                ? AwaitRefusedLoadExitAsync(vm, time)
                : Task.CompletedTask,
        };

        var steps = new List<BootStep>
        {
            // The jail clears a stale tree and makes the log and metrics FIFO inside itself.
            new("stale-files", _ => attempt.RemoveStaleFiles(restore.VsockUdsPath, freshLog: false)),
            // Checked before the jail is made: unjailed, Firecracker itself refuses a missing file at the load, but a
            // jail cannot even be built around one.
            new("snapshot-files", _ =>
            {
                foreach (var file in new[] { snapshot.StatePath, snapshot.MemoryPath })
                {
                    if (!File.Exists(file))
                        throw new FileNotFoundException($"the snapshot file {file} does not exist", file);
                }
                return Task.CompletedTask;
            }),
        };
        steps.AddRange(options.Preparation);
        steps.Add(new("spawn", async ct =>
        {
            await attempt.SpawningAsync(ct).ConfigureAwait(false);
            var files = new List<JailFile>
            {
                new(Path.GetFullPath(snapshot.StatePath), JailedStatePath, ReadOnly: true) { Shared = true },
                new(Path.GetFullPath(snapshot.MemoryPath), JailedMemoryPath, ReadOnly: true) { Shared = true },
            };
            files.AddRange(restore.DriveBindings.Select(b => new JailFile(Path.GetFullPath(b.Source), b.RecordedPath, b.ReadOnly) { Shared = b.ReadOnly }));
            var jailed = await JailedVmm.LaunchAsync(JailedLaunch(options, jail, JailedArguments(options), files, attempt), time, ct).ConfigureAwait(false);
            attempt.Vm = new Microvm(options, logger, jailed.Process, MicrovmState.Starting, description)
            {
                _jail = jailed,
                _jailLaunchedHere = true,
                _restoredJailExposure = jail.FileExposure,
                _restoredVsockPath = restore.VsockUdsPath,
            };
            if (restore.VsockUdsPath is { } vsock)
                LinkVsock(vsock, jailed.Layout);
            await attempt.SpawnedAsync(jailed.Pid, ct).ConfigureAwait(false);
        }));
        steps.Add(new("api-ready", ct => Readiness.WaitForListenerAsync(attempt.Vm._vmm, attempt.Vm.Client, options.SocketPath,
            options.ApiReadyTimeout, time, ct)));
        // The paths the jailed VMM sees: the snapshot's files and its vsock socket inside the chroot.
        var load = (restore with { VsockUdsPath = restore.VsockUdsPath is null ? null : JailedVsockPath })
            .ToLoadParams(new SnapshotFiles(JailedStatePath, JailedMemoryPath));
        steps.Add(new(SnapshotLoadStep, ct => attempt.Vm.Client.LoadSnapshotAsync(load, ct)));

        return await attempt.RunAsync(steps, restore.Resume ? MicrovmState.Running : MicrovmState.Paused, cancellationToken)
            .ConfigureAwait(false);
    }
}
