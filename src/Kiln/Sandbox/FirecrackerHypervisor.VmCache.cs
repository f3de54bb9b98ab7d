// A template sandbox's start through the VM cache (FirecrackerHypervisorOptions.VmCache): a cached clone, restored
// and paused in its slot directory, is handed to the sandbox — its API socket, vsock socket, console, Firecracker log
// and drive copies renamed into the sandbox directory under the names a direct clone would have there, recorded in
// the state file, then resumed. What a cached VM cannot take from the sandbox is what Firecracker fixed at its spawn
// or load (see Microvm.MoveAsync): its --id stays kiln-cache-N in Firecracker's own log lines, guest-initiated vsock
// connections still go to the slot's path, and it has no metrics FIFO, no TAPs, no jail. A sandbox asking for any of
// those (or detached, whose VMM must outlive this process, while a cached VMM is owned by it) bypasses the cache.
// Every start says what happened: a log event, the counter kiln.sandbox.vm_cache.takes and the start span's tag
// kiln.sandbox.vm_cache, each hit, miss or bypass.
using System.Diagnostics;
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>The start step named when the cache fails a start (a reported refill failure, a failed hand-over).</summary>
    public const string VmCacheStep = "vm-cache";

    /// <summary>
    /// A cached clone of <paramref name="template"/> handed to this sandbox and Running; null when the sandbox
    /// restores directly (no cache, it does not serve this sandbox, none ready, or the one taken died meanwhile).
    /// </summary>
    /// <exception cref="MicrovmBootException">Step <see cref="VmCacheStep"/>: a refill failure reported, or the hand-over failed (its VM was stopped and its files removed).</exception>
    private async Task<Microvm?> TakeFromVmCacheAsync(MicrovmTemplate template, TemplateCloneOptions clone, CancellationToken cancellationToken)
    {
        if (_options.VmCache is not { } cache)
            return null;
        if (VmCacheBypassReason(cache, template, clone) is { } reason)
        {
            Count("bypass");
            VmCacheLog.Bypass(_logger, Id, reason);
            return null;
        }

        CachedVm? cached;
        try
        {
            cached = await cache.TakeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (VmCacheException e)
        {
            throw new MicrovmBootException(VmCacheStep, e.Message, null, "", e);
        }
        if (cached is null)
        {
            Count("miss");
            VmCacheLog.Miss(_logger, Id, template.Name);
            return null;
        }

        var drives = template.Manifest.Drives.Where(d => !d.IsReadOnly)
            .Select(d => new FileMove(cached.Clone.DrivePath(d.DriveId), clone.DrivePath(d.DriveId)))
            .ToArray();
        Microvm moved;
        try
        {
            moved = await cached.Vm.MoveAsync(clone.Microvm with { Spawned = null, Preparation = [] },
                template.Manifest.VsockRecordedPath is null ? null : clone.VsockPath, drives, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Still in its slot: stopped and removed there.
            var ended = cached.Vm.State == MicrovmState.Exited;
            await cached.Vm.StopAsync(ShutdownPlan.Kill(), CancellationToken.None).ConfigureAwait(false);
            await cached.Vm.DisposeAsync().ConfigureAwait(false);
            cache.Release(cached);
            if (ended && e is MicrovmStateException)
            {
                VmCacheLog.HandOverLost(_logger, Id, cached.Vm.Pid);
                Count("miss");
                return null;
            }
            throw new MicrovmBootException(VmCacheStep, $"Handing the cached VM (pid {cached.Vm.Pid}) to the sandbox failed: {e.Message}", null, "", e);
        }
        cache.Release(cached);

        _vm = moved;
        StartedAt = _time.GetUtcNow();
        try
        {
            // Recorded before it runs, as a spawned VMM is: a driver in another process can find (and stop) it.
            await PersistAsync(cancellationToken).ConfigureAwait(false);
            await moved.ResumeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var ended = moved.State == MicrovmState.Exited;
            var tail = moved.Process.ReadOutputTail();
            await moved.StopAsync(ShutdownPlan.Kill(), CancellationToken.None).ConfigureAwait(false);
            await moved.DisposeAsync().ConfigureAwait(false);
            _vm = null;
            // What the hand-over moved in; the console and log stay, as a failed direct restore leaves them.
            foreach (var drive in drives)
                Microvm.DeleteFile(drive.To);
            Microvm.DeleteFile(clone.VsockPath);
            Microvm.DeleteFile(clone.Microvm.SocketPath);
            if (ended && e is not OperationCanceledException)
            {
                VmCacheLog.HandOverLost(_logger, Id, moved.Pid);
                Count("miss");
                return null;
            }
            throw new MicrovmBootException(VmCacheStep, $"Resuming the cached VM (pid {moved.Pid}) failed: {e.Message}", (e as Kiln.Api.FirecrackerApiException)?.FaultMessage, tail, e);
        }
        Count("hit");
        VmCacheLog.Hit(_logger, Id, template.Name, moved.Pid);
        return moved;
    }

    /// <summary>Why the cache cannot serve this start (its VMs were made otherwise than this sandbox asks); null when it can.</summary>
    private string? VmCacheBypassReason(VmCache cache, MicrovmTemplate template, TemplateCloneOptions clone)
    {
        if (Path.GetFullPath(template.Directory) != cache.Options.TemplateDirectory)
            return $"it caches template {cache.Template.Name}, not {template.Name}";
        if (_ownership != Kiln.Vmm.VmmOwnership.Owned)
            return "a detached sandbox's VMM must outlive this process, and cached VMMs are owned by it";
        if (Path.GetFullPath(Config.FirecrackerPath) != Path.GetFullPath(cache.Options.FirecrackerPath))
            return "it restores with another firecracker binary";
        if (clone.TrackDirtyPages != cache.Options.TrackDirtyPages || clone.ClockRealtime != cache.Options.ClockRealtime)
            return "its VMs were loaded with other dirty-page tracking or clock_realtime";
        if (Config.Metrics)
            return "Firecracker's metrics path is fixed at the spawn";
        if (clone.NetworkOverrides.Count > 0)
            return "a cached VM's TAPs are fixed at its load";
        if (clone.Jail is not null)
            return "a cached VM is not jailed (its chroot, uid and cgroups are fixed at its launch)";
        return null;
    }

    private static void Count(string result)
    {
        KilnTelemetry.VmCacheTakes.Add(1, new KeyValuePair<string, object?>("result", result));
        Activity.Current?.SetTag("kiln.sandbox.vm_cache", result);
    }
}
