// A directory Kiln owns, one subdirectory per template: template.json (the manifest), vm-config.json (the machine
// as Firecracker exported it), snapshot.state, snapshot.mem and drives/<id> (the writable drives as they were when
// the snapshot was taken). A template is made in a hidden temporary directory and renamed into place, so a
// half-made one is never listed.
using System.Text.Json;
using Kiln.Api;
using Kiln.Host;

namespace Kiln.Vm.Templates;

/// <summary>Makes, lists, opens and deletes templates under one root directory.</summary>
public sealed class TemplateStore
{
    internal const string ManifestFile = "template.json";
    internal const string ConfigFile = "vm-config.json";

    /// <summary>A store rooted at <paramref name="root"/> (created when the first template is made).</summary>
    public TemplateStore(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
    }

    /// <summary>The store's directory.</summary>
    public string Root { get; }

    /// <summary>Whether <paramref name="name"/> can name a template: 1–64 letters, digits, '-' and '_', not starting with '-'.</summary>
    public static bool IsValidName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 64 && name[0] != '-' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>
    /// Snapshots <paramref name="source"/> into a new template. A Running source is paused for the snapshot and the
    /// copies of its writable drives, then resumed; a Paused one stays Paused.
    /// </summary>
    /// <exception cref="TemplateStoreException">The name is invalid or taken, or the template's files could not be
    /// written (a full or read-only store: the I/O error is the inner exception; nothing of the template is left).</exception>
    /// <exception cref="MicrovmStateException">The source is neither Running nor Paused.</exception>
    /// <exception cref="MicrovmException">A drive path the snapshot would record is relative.</exception>
    /// <exception cref="FirecrackerApiException">Firecracker refused or failed the snapshot (its own fault message, a
    /// full disk's "No space left on device" among them).</exception>
    public async Task<MicrovmTemplate> CreateAsync(string name, Microvm source, CancellationToken cancellationToken = default)
    {
        try
        {
            return await UnsafeCreateAsync(name, source, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TemplateStoreException(name, $"Template '{name}' could not be written under {Root}: {e.Message}", e);
        }
    }

    private async Task<MicrovmTemplate> UnsafeCreateAsync(string name, Microvm source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        RequireValidName(name);
        var final = Path.Combine(Root, name);
        if (Directory.Exists(final))
            throw new TemplateStoreException(name, $"Template '{name}' already exists.");
        // After a pause or resume that got no answer, the source's State is a guess: Firecracker says which it is.
        var state = source.IsStateInDoubt ? await source.RefreshStateAsync(cancellationToken).ConfigureAwait(false) : source.State;
        var wasRunning = state == MicrovmState.Running;
        if (!wasRunning && state != MicrovmState.Paused)
            throw new MicrovmStateException("make a template", state, MicrovmState.Running, MicrovmState.Paused);

        var temporary = Directory.CreateDirectory(Path.Combine(Root, $".{name}.{Guid.NewGuid():N}")).FullName;
        try
        {
            var version = (await source.Client.GetFirecrackerVersionAsync(cancellationToken).ConfigureAwait(false)).FirecrackerVersion;
            if (wasRunning)
                await PauseAsync(source, cancellationToken).ConfigureAwait(false);
            TemplateManifest manifest;
            try
            {
                manifest = await SnapshotIntoAsync(name, source, version, temporary, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (wasRunning)
            {
                // A snapshot that failed because the VMM died cannot be resumed either: the snapshot's failure is the
                // caller's, the resume's rides along (a finally would have thrown the resume's instead).
                await CleanupFailures.RunAsync(e, () => source.ResumeAsync(CancellationToken.None)).ConfigureAwait(false);
                throw;
            }
            if (wasRunning)
                await source.ResumeAsync(CancellationToken.None).ConfigureAwait(false);
            await using (var file = File.Create(Path.Combine(temporary, ManifestFile)))
                await JsonSerializer.SerializeAsync(file, manifest, TemplateJsonContext.Default.TemplateManifest, cancellationToken).ConfigureAwait(false);
            Directory.Move(temporary, final);
            return new MicrovmTemplate(final, manifest);
        }
        catch (Exception e)
        {
            CleanupFailures.Run(e, () => Directory.Delete(temporary, recursive: true));
            throw;
        }
    }

    /// <summary>
    /// Pauses the running source for its snapshot. A pause that got no answer may have happened: the source is then
    /// left as it was found, running, with what that costs attached to the pause's failure.
    /// </summary>
    private static async Task PauseAsync(Microvm source, CancellationToken cancellationToken)
    {
        try
        {
            await source.PauseAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (source.IsStateInDoubt)
        {
            await CleanupFailures.RunAsync(e, async () =>
            {
                if (await source.RefreshStateAsync(CancellationToken.None).ConfigureAwait(false) == MicrovmState.Paused)
                    await source.ResumeAsync(CancellationToken.None).ConfigureAwait(false);
            }).ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<TemplateManifest> SnapshotIntoAsync(string name, Microvm source, string version, string directory, CancellationToken cancellationToken)
    {
        var config = await source.Client.GetExportVmConfigAsync(cancellationToken).ConfigureAwait(false);
        var drives = config.Drives ?? [];
        foreach (var drive in drives)
        {
            if (drive.PathOnHost is { } p && !Path.IsPathRooted(p))
                throw new MicrovmException($"Drive '{drive.DriveId}' has the relative path '{p}': a template needs the absolute path Firecracker recorded.");
        }
        var manifest = new TemplateManifest
        {
            Name = name,
            CreatedAt = DateTimeOffset.UtcNow,
            FirecrackerVersion = version,
            VcpuCount = config.MachineConfig?.VcpuCount ?? 0,
            MemSizeMib = config.MachineConfig?.MemSizeMib ?? 0,
            VsockRecordedPath = config.Vsock?.UdsPath,
            NetworkInterfaceIds = [.. (config.NetworkInterfaces ?? []).Select(n => n.IfaceId)],
        };
        // A jailed source writes inside its chroot; Microvm moves the files out to these host paths.
        await source.CreateSnapshotAsync(new SnapshotCreateParams
        {
            SnapshotPath = Path.Combine(directory, manifest.StateFile),
            MemFilePath = Path.Combine(directory, manifest.MemoryFile),
            SnapshotType = SnapshotType.Full,
        }, cancellationToken).ConfigureAwait(false);
        var jail = source.Jail;
        await using (var file = File.Create(Path.Combine(directory, ConfigFile)))
            await JsonSerializer.SerializeAsync(file, config, FirecrackerJsonContext.Default.FullVmConfiguration, cancellationToken).ConfigureAwait(false);

        // The drives are copied while the guest is paused, so they match the memory the snapshot holds.
        Directory.CreateDirectory(Path.Combine(directory, "drives"));
        var templateDrives = new List<TemplateDrive>();
        var files = new List<FileFingerprint>();
        foreach (var relative in new[] { manifest.StateFile, manifest.MemoryFile })
            files.Add(await FingerprintAsync(directory, relative, cancellationToken).ConfigureAwait(false));
        foreach (var drive in drives.Where(d => d.PathOnHost is not null))
        {
            if (drive.IsReadOnly == true)
            {
                // A jailed VM's read-only drive is recorded at its chroot path; its clones share the host file behind it.
                var shared = jail is null ? null : SharedHostFile(jail, drive);
                templateDrives.Add(new TemplateDrive(drive.DriveId, drive.PathOnHost!, true, null) { SharedPath = shared });
                files.Add(await FileFingerprint.OfAsync(shared ?? drive.PathOnHost!, cancellationToken).ConfigureAwait(false));
                continue;
            }
            var copy = Path.Combine("drives", drive.DriveId);
            // A jailed VM's file at its recorded path is seen from the host under its chroot.
            var current = jail is null ? drive.PathOnHost! : jail.Layout.OnHost(drive.PathOnHost!);
            await FileCopy.CloneOrCopyAsync(current, Path.Combine(directory, copy), cancellationToken).ConfigureAwait(false);
            templateDrives.Add(new TemplateDrive(drive.DriveId, drive.PathOnHost!, false, copy));
            files.Add(await FingerprintAsync(directory, copy, cancellationToken).ConfigureAwait(false));
        }
        return manifest with { Drives = templateDrives, Files = files, Jailed = jail is not null };
    }

    /// <summary>The host file a jailed VM's read-only drive was made visible from (what Kiln exposed at its path).</summary>
    private static string SharedHostFile(Kiln.Vmm.JailedVmm jail, Drive drive) =>
        jail.Files.FirstOrDefault(f => f.PathInJail == drive.PathOnHost)?.HostPath
            ?? throw new MicrovmException($"Drive '{drive.DriveId}' is at {drive.PathOnHost} in the jail, but no host file was exposed there: a template cannot share it.");

    private static async Task<FileFingerprint> FingerprintAsync(string directory, string relative, CancellationToken cancellationToken) =>
        (await FileFingerprint.OfAsync(Path.Combine(directory, relative), cancellationToken).ConfigureAwait(false)) with { Path = relative };

    /// <summary>Opens the template <paramref name="name"/>.</summary>
    /// <exception cref="TemplateStoreException">No such template, or its manifest is unreadable.</exception>
    public MicrovmTemplate Open(string name)
    {
        RequireValidName(name);
        var directory = Path.Combine(Root, name);
        var path = Path.Combine(directory, ManifestFile);
        if (!File.Exists(path))
            throw new TemplateStoreException(name, $"No template '{name}' in {Root}.");
        TemplateManifest? manifest;
        try
        {
            using var file = File.OpenRead(path);
            manifest = JsonSerializer.Deserialize(file, TemplateJsonContext.Default.TemplateManifest);
        }
        catch (JsonException e)
        {
            throw new TemplateStoreException(name, $"Template '{name}' has an unreadable {ManifestFile}: {e.Message}");
        }
        if (manifest is null || manifest.Format != 1)
            throw new TemplateStoreException(name, $"Template '{name}' has a {ManifestFile} of an unknown format.");
        return new MicrovmTemplate(directory, manifest);
    }

    /// <summary>The templates, by name.</summary>
    public IReadOnlyList<MicrovmTemplate> List()
    {
        if (!Directory.Exists(Root))
            return [];
        var templates = new List<MicrovmTemplate>();
        foreach (var directory in Directory.EnumerateDirectories(Root).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(directory);
            if (IsValidName(name) && File.Exists(Path.Combine(directory, ManifestFile)))
                templates.Add(Open(name));
        }
        return templates;
    }

    /// <summary>
    /// Deletes the template <paramref name="name"/>; false when there is none. Running clones keep working: their
    /// drives are their own copies and the memory file they map stays until they end.
    /// </summary>
    public bool Delete(string name)
    {
        RequireValidName(name);
        var directory = Path.Combine(Root, name);
        if (!Directory.Exists(directory))
            return false;
        // Renamed first so that a half-deleted template is never opened.
        var doomed = Path.Combine(Root, $".{name}.deleting.{Guid.NewGuid():N}");
        Directory.Move(directory, doomed);
        Directory.Delete(doomed, recursive: true);
        return true;
    }

    private static void RequireValidName(string name)
    {
        if (!IsValidName(name))
            throw new TemplateStoreException(name ?? "", $"'{name}' is not a template name (1 to 64 letters, digits, '-' and '_', not starting with '-').");
    }
}
