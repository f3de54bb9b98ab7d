// A template opened from its store: it checks it may be loaded (same Firecracker release, files unchanged, recorded
// drive paths present) and starts clones, plain or jailed (then every drive is made at its recorded path inside the
// clone's chroot instead of bound in a mount namespace). A clone is a restore with: its own copies of the writable drives (reflink
// where the file system can), bound over the recorded paths in the clone VMM's private mount namespace (the snapshot
// names drives by the paths Firecracker opened, and only a namespace lets N VMMs open N files at one path); its own
// vsock socket (vsock_override), API socket, console and TAPs (network_overrides); read-only drives and the memory
// file shared (Firecracker maps the memory file privately, so clones share its pages until they write).
using Kiln.Api;
using Kiln.Host;

namespace Kiln.Vm.Templates;

/// <summary>A snapshot and the machine it was taken from, ready to clone.</summary>
public sealed class MicrovmTemplate
{
    internal MicrovmTemplate(string directory, TemplateManifest manifest)
    {
        Directory = directory;
        Manifest = manifest;
    }

    /// <summary>The template's name.</summary>
    public string Name => Manifest.Name;

    /// <summary>Its directory in the store.</summary>
    public string Directory { get; }

    /// <summary>What it holds and was made from.</summary>
    public TemplateManifest Manifest { get; }

    /// <summary>Its snapshot files.</summary>
    public SnapshotFiles Snapshot => new(Path.Combine(Directory, Manifest.StateFile), Path.Combine(Directory, Manifest.MemoryFile));

    /// <summary>The machine as Firecracker exported it when the template was made (<c>GET /vm/config</c>).</summary>
    /// <exception cref="TemplateStoreException">The file is missing or unreadable.</exception>
    public async Task<FullVmConfiguration> ReadVmConfigurationAsync(CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(Directory, TemplateStore.ConfigFile);
        try
        {
            await using var file = File.OpenRead(path);
            return await System.Text.Json.JsonSerializer.DeserializeAsync(file, FirecrackerJsonContext.Default.FullVmConfiguration, cancellationToken).ConfigureAwait(false)
                ?? throw new TemplateStoreException(Name, $"Template '{Name}' has an empty {TemplateStore.ConfigFile}.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            throw new TemplateStoreException(Name, $"Template '{Name}' has an unreadable {TemplateStore.ConfigFile}: {e.Message}");
        }
    }

    /// <summary>
    /// Refuses a template that must not be loaded by <paramref name="firecrackerPath"/>: another Firecracker release
    /// wrote it, one of its files changed since, or a writable drive's recorded path is gone.
    /// </summary>
    /// <exception cref="TemplateMismatchException">What is wrong, typed.</exception>
    /// <exception cref="IOException">The binary's version could not be read.</exception>
    public Task VerifyAsync(string firecrackerPath, CancellationToken cancellationToken = default) =>
        VerifyAsync(firecrackerPath, jailed: false, cancellationToken);

    /// <summary>
    /// As <see cref="VerifyAsync(string, CancellationToken)"/>, for a clone that is <paramref name="jailed"/> or not: a
    /// jailed clone finds its writable drives at their recorded paths inside its chroot (the host paths need not
    /// exist), and only a jailed clone can load a template made from a jailed VM (its paths are the jail's).
    /// </summary>
    /// <exception cref="TemplateMismatchException">What is wrong, typed.</exception>
    /// <exception cref="IOException">The binary's version could not be read.</exception>
    public async Task VerifyAsync(string firecrackerPath, bool jailed, CancellationToken cancellationToken = default)
    {
        var binary = await FirecrackerBinary.GetVersionAsync(firecrackerPath, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        if (!FirecrackerVersion.TryParse(Manifest.FirecrackerVersion, out var recorded) || recorded != binary)
        {
            throw new TemplateMismatchException(Name, TemplateMismatchKind.FirecrackerVersion,
                $"made by Firecracker {Manifest.FirecrackerVersion}, but {firecrackerPath} is {binary}; snapshots load only into the release that wrote them.");
        }
        foreach (var file in Manifest.Files)
        {
            var resolved = file with { Path = Path.Combine(Directory, file.Path) };
            if (!await resolved.MatchesAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new TemplateMismatchException(Name, TemplateMismatchKind.FileChanged,
                    $"{resolved.Path} changed since the template was made (size or checksum differ, or it is gone).");
            }
        }
        if (Manifest.Jailed && !jailed)
        {
            throw new TemplateMismatchException(Name, TemplateMismatchKind.NeedsJail,
                "was made from a jailed VM: its snapshot records the paths inside that VM's chroot, so its clones must run under a jail too.");
        }
        foreach (var drive in Manifest.Drives.Where(d => d.IsReadOnly && jailed))
        {
            if (!File.Exists(drive.SharedHostPath))
            {
                throw new TemplateMismatchException(Name, TemplateMismatchKind.RecordedPathMissing,
                    $"read-only drive '{drive.DriveId}' is {drive.SharedHostPath}, which is gone; every clone shares it.");
            }
        }
        foreach (var drive in Manifest.Drives.Where(d => !d.IsReadOnly && !jailed))
        {
            if (!File.Exists(drive.RecordedPath))
            {
                throw new TemplateMismatchException(Name, TemplateMismatchKind.RecordedPathMissing,
                    $"drive '{drive.DriveId}' was recorded at {drive.RecordedPath}, which is gone; a clone binds its own copy over that path, so it must exist.");
            }
        }
    }

    /// <summary>Verifies the template, then starts one clone.</summary>
    /// <exception cref="TemplateMismatchException">The template must not be loaded (nothing was started).</exception>
    /// <exception cref="MicrovmBootException">The clone failed; its VMM was killed and its files removed.</exception>
    public async Task<Microvm> StartCloneAsync(TemplateCloneOptions clone, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clone);
        await VerifyAsync(clone.Microvm.FirecrackerPath, clone.Jail is not null, cancellationToken).ConfigureAwait(false);
        return await StartVerifiedCloneAsync(clone, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Verifies the template once, then starts <paramref name="count"/> clones, one after another, clone
    /// <c>i</c> with <paramref name="optionsFor"/>(<c>i</c>). All or nothing: when one fails, those already started
    /// are stopped and their files removed, and its error is thrown.
    /// </summary>
    /// <exception cref="TemplateMismatchException">The template must not be loaded (nothing was started).</exception>
    /// <exception cref="MicrovmBootException">A clone failed; every clone of this call was stopped and removed.</exception>
    public async Task<IReadOnlyList<Microvm>> StartClonesAsync(int count, Func<int, TemplateCloneOptions> optionsFor,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentNullException.ThrowIfNull(optionsFor);
        var all = Enumerable.Range(0, count).Select(optionsFor).ToArray();
        if (all.Select(o => o.Directory).Distinct(StringComparer.Ordinal).Count() != count)
            throw new ArgumentException("Each clone needs a directory of its own.", nameof(optionsFor));
        if (all.Select(o => o.Jail is null).Distinct().Count() != 1)
            throw new ArgumentException("The clones of one call are all jailed or none is.", nameof(optionsFor));
        await VerifyAsync(all[0].Microvm.FirecrackerPath, all[0].Jail is not null, cancellationToken).ConfigureAwait(false);
        var started = new List<Microvm>(count);
        try
        {
            foreach (var clone in all)
            {
                started.Add(await StartVerifiedCloneAsync(clone, cancellationToken).ConfigureAwait(false));
                progress?.Report(started.Count);
            }
            return started;
        }
        catch (Exception e)
        {
            // Every clone is stopped and removed even when one's clean-up fails; the clone's failure is what the
            // caller gets, with the clean-up failures attached (CleanupFailures).
            for (var i = 0; i < started.Count; i++)
            {
                var (vm, files) = (started[i], all[i]);
                await CleanupFailures.RunAsync(e, async () =>
                {
                    await using (vm.ConfigureAwait(false))
                        await vm.StopAsync(ShutdownPlan.Kill(), CancellationToken.None).ConfigureAwait(false);
                }).ConfigureAwait(false);
                CleanupFailures.Run(e, () => RemoveCloneFiles(files));
            }
            throw;
        }
    }

    /// <summary>
    /// Removes the files of a clone that has ended: its drive copies, vsock and API sockets, console and log.
    /// </summary>
    public void RemoveCloneFiles(TemplateCloneOptions clone)
    {
        ArgumentNullException.ThrowIfNull(clone);
        foreach (var drive in Manifest.Drives.Where(d => !d.IsReadOnly))
            Microvm.DeleteFile(clone.DrivePath(drive.DriveId));
        Microvm.DeleteFile(clone.VsockPath);
        Microvm.DeleteFile(clone.Microvm.SocketPath);
        Microvm.DeleteFile(clone.Microvm.ConsolePath);
        if (clone.Microvm.LogPath is { } log)
            Microvm.DeleteFile(log);
    }

    /// <summary>Starts one clone of a template verified earlier (<see cref="VerifyAsync(string, bool, CancellationToken)"/>).</summary>
    internal async Task<Microvm> StartVerifiedCloneAsync(TemplateCloneOptions clone, CancellationToken cancellationToken)
    {
        var missing = Manifest.NetworkInterfaceIds.Except(clone.NetworkOverrides.Select(n => n.IfaceId), StringComparer.Ordinal).ToArray();
        if (missing.Length > 0)
            throw new ArgumentException($"The template's interfaces {string.Join(", ", missing)} need a TAP each (NetworkOverrides).", nameof(clone));
        var writable = Manifest.Drives.Where(d => !d.IsReadOnly).ToArray();
        var created = new List<string>();
        var copies = new BootStep("drive-copies", async ct =>
        {
            System.IO.Directory.CreateDirectory(clone.Directory);
            foreach (var drive in writable)
            {
                // CreateNew: a file already there is refused, never overwritten (nor removed by the rollback).
                await FileCopy.CloneOrCopyAsync(Path.Combine(Directory, drive.TemplateFile!), clone.DrivePath(drive.DriveId), ct).ConfigureAwait(false);
                created.Add(clone.DrivePath(drive.DriveId));
            }
        });
        var options = clone.Microvm with { Preparation = [.. clone.Microvm.Preparation, copies] };
        var restore = new RestoreOptions
        {
            VsockUdsPath = Manifest.VsockRecordedPath is null ? null : clone.VsockPath,
            NetworkOverrides = clone.NetworkOverrides,
            TrackDirtyPages = clone.TrackDirtyPages,
            ClockRealtime = clone.ClockRealtime,
            Resume = clone.Resume,
            // Unjailed, the clone's copies are bound over the recorded paths in its private mount namespace; jailed, every
            // drive is made at its recorded path inside the chroot, read-only ones shared.
            DriveBindings = clone.Jail is null
                ? [.. writable.Select(d => new DriveBinding(d.RecordedPath, clone.DrivePath(d.DriveId)))]
                : [.. Manifest.Drives.Select(d => d.IsReadOnly
                    ? new DriveBinding(d.RecordedPath, d.SharedHostPath) { ReadOnly = true }
                    : new DriveBinding(d.RecordedPath, clone.DrivePath(d.DriveId)))],
            Jail = clone.Jail,
        };
        try
        {
            return await Microvm.RestoreAsync(Snapshot, options, restore, description: null, cancellationToken).ConfigureAwait(false);
        }
        catch (MicrovmBootException e)
        {
            foreach (var file in created)
                CleanupFailures.Run(e, () => Microvm.DeleteFile(file));
            throw;
        }
    }
}
