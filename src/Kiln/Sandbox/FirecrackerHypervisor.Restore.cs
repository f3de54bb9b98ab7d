// Start by restore: a sandbox whose configuration names a template or snapshot (HypervisorConfig.Restore) is started
// by loading it (Microvm.RestoreAsync; for a template, MicrovmTemplate's clone: its writable drives copied into the
// sandbox directory and bound over the recorded paths in the VMM's private mount namespace). Its devices are the
// snapshot's; the sandbox's own say what the load overrides: a VsockDevice's socket becomes vsock_override, a
// NetworkDevice (with the snapshot's interface id) a network_override; a sandbox network (HypervisorConfig.Network)
// is set up per clone and overrides the snapshot's interface (FirecrackerHypervisor.RestoreNetwork.cs). A template's vsock gets the sandbox's own socket
// and is recorded as the sandbox's VsockDevice, so exec/cp/vsock reach the clone's agent as any sandbox's. Failure
// rolls back as a failed boot does: the VMM killed, what the restore made removed, the record put back.
using System.Diagnostics;
using Kiln.Api;
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>Whether this sandbox's VM is restored (from a template or snapshot) rather than booted.</summary>
    public bool IsRestored => Config.Restore is not null;

    private async Task UnsafeRestoreAsync(SandboxRestore restore, CancellationToken cancellationToken)
    {
        if (_vm is not null)
            await ReleaseVmAsync().ConfigureAwait(false); // the handles of a VMM that ended on its own
        var previousState = _state;
        var previousStartedAt = StartedAt;
        var previousDevices = _devices.ToArray();

        KilnTelemetry.Starts.Add(1);
        using var activity = KilnTelemetry.ActivitySource.StartActivity("kiln.sandbox.restore");
        activity?.SetTag("kiln.sandbox.id", Id);
        activity?.SetTag("kiln.sandbox.restored_from", restore.Describe());
        var t0 = _time.GetTimestamp();
        _state = SandboxState.Starting;
        var networks = Networks;
        Kiln.Host.Network.SandboxNetworkInfo? network = null;

        Microvm restored;
        try
        {
            var template = restore.TemplateDirectory is { } directory ? OpenTemplate(directory) : null;
            var machine = template is null ? null : await template.ReadVmConfigurationAsync(cancellationToken).ConfigureAwait(false);
            // The sandbox network (FirecrackerHypervisor.RestoreNetwork.cs): made before the spawn, the VMM spawned in it.
            var spec = Config.Network is { Mode: not Kiln.Host.Network.NetworkMode.None } asked ? RestoredNetworkSpec(asked, machine) : null;
            network = spec is null ? null : networks.Plan(Id, spec);
            var options = LaunchOptions(networks, network) with { Preparation = spec is null ? [] : [NetworkStep(networks, spec)] };
            var overrides = NetworkOverrides();
            if (network is not null)
                overrides.Add(new NetworkOverride { IfaceId = RestoredInterfaceId(machine), HostDevName = network.TapName! });
            if (template is not null)
            {
                if (Config.BlockPoolSize > 0)
                    _pool = ClonePool(template.Manifest);
                var clone = new TemplateCloneOptions
                {
                    Microvm = options,
                    Directory = Paths.Directory,
                    NetworkOverrides = overrides,
                    TrackDirtyPages = restore.TrackDirtyPages,
                    ClockRealtime = restore.ClockRealtime,
                    Jail = Config.Jail,
                };
                if (template.Manifest.VsockRecordedPath is not null)
                {
                    var vsock = machine!.Vsock;
                    _devices.RemoveAll(d => d is VsockDevice);
                    if (vsock is not null)
                        _devices.Add(new VsockDevice(vsock.GuestCid, clone.VsockPath));
                }
                // A restart clones afresh: the drive copies of the last run go (a copy is never made over a file).
                foreach (var drive in template.Manifest.Drives.Where(d => !d.IsReadOnly))
                    Microvm.DeleteFile(clone.DrivePath(drive.DriveId));
                restored = await TakeFromVmCacheAsync(template, clone, cancellationToken).ConfigureAwait(false)
                    ?? await template.StartCloneAsync(clone, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var load = new RestoreOptions
                {
                    VsockUdsPath = _devices.OfType<VsockDevice>().FirstOrDefault() is { } vsock ? Path.GetFullPath(vsock.UdsPath) : null,
                    NetworkOverrides = overrides,
                    TrackDirtyPages = restore.TrackDirtyPages,
                    ClockRealtime = restore.ClockRealtime,
                    Resume = restore.Resume,
                    DriveBindings = restore.Drives,
                    Jail = Config.Jail,
                };
                restored = await Microvm.RestoreAsync(new SnapshotFiles(restore.SnapshotStatePath!, restore.SnapshotMemoryPath!), options, load, cancellationToken)
                    .ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            var boot = e as MicrovmBootException;
            var step = boot?.Step ?? (e is TemplateMismatchException or TemplateStoreException or SandboxConfigurationException ? "template" : "prepare");
            KilnTelemetry.StartFailures.Add(1, new KeyValuePair<string, object?>("step", step));
            activity?.SetStatus(ActivityStatusCode.Error, step);
            Log.StartFailed(_logger, e, Id, step);
            _spawningSince = null;
            _vm = null; // the failed restore killed it and released its handles
            if (network is not null)
                await networks.TearDownAsync(Id, CancellationToken.None).ConfigureAwait(false);
            _state = previousState;
            StartedAt = previousStartedAt;
            _devices.Clear();
            _devices.AddRange(previousDevices);
            var cause = boot?.InnerException ?? e;
            var fault = boot?.FaultMessage;
            var reason = cause is OperationCanceledException && cancellationToken.IsCancellationRequested ? "cancelled" : cause.Message;
            var failure = CleanupFailures.Move(e, new SandboxStartException(step,
                $"Sandbox '{Id}' failed to restore from {restore.Describe()} at step '{step}': {reason}{(fault is null || reason.Contains(fault, StringComparison.Ordinal) ? "" : $" (Firecracker: {fault})")}",
                fault, boot?.OutputTail ?? "", cause)
            { SandboxId = SandboxId });
            // As for a boot: the record put back, a failure to do so attached to the restore's (CleanupFailures).
            await CleanupFailures.RunAsync(failure, () => PersistAsync(CancellationToken.None)).ConfigureAwait(false);
            throw failure;
        }

        _vm = restored;
        // A template clone is always resumed (its clones are for running); a snapshot may be loaded paused.
        _state = restored.State == MicrovmState.Paused ? SandboxState.Paused : SandboxState.Running;
        WatchForUnexpectedExit(restored);
        await PersistAsync(CancellationToken.None).ConfigureAwait(false);
        var elapsed = _time.GetElapsedTime(t0).TotalMilliseconds;
        KilnTelemetry.StartDuration.Record(elapsed);
        Log.Started(_logger, Id, elapsed);
    }

    /// <summary>The sandbox's TAPs for the snapshot's interfaces; a block device has no place in a restored machine.</summary>
    private List<NetworkOverride> NetworkOverrides()
    {
        var overrides = new List<NetworkOverride>();
        foreach (var device in _devices)
        {
            switch (device)
            {
                case NetworkDevice { Id: { } iface } net:
                    overrides.Add(new NetworkOverride { IfaceId = iface, HostDevName = net.TapName });
                    break;
                case NetworkDevice:
                    throw new SandboxConfigurationException(nameof(NetworkDevice.Id), "a restored sandbox's TAP needs the id of the snapshot's interface it replaces");
                case BlockDevice:
                    throw new SandboxConfigurationException(nameof(BlockDevice), "a restored sandbox's drives are the snapshot's; boot-time drives cannot be added to it");
            }
        }
        return overrides;
    }

    private static MicrovmTemplate OpenTemplate(string directory)
    {
        var full = Path.GetFullPath(directory);
        return new TemplateStore(Path.GetDirectoryName(full)!).Open(Path.GetFileName(full));
    }
}
