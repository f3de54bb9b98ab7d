// What a restored sandbox cannot have, refused before anything starts, each error naming the property. The machine
// is the snapshot's: the pool, MMDS and memory hot-plug are fixed at boot, so a restored sandbox asks for none of
// them. A jail it may have: a template's manifest names every drive the chroot must hold, and a snapshot restore names
// them itself (SandboxRestore.Drives). A sandbox network it may have: each restore sets one up and points the
// snapshot's interface at its TAP (FirecrackerHypervisor.RestoreNetwork.cs).
namespace Kiln.Sandbox;

internal static class SandboxRestoreValidator
{
    public static void Validate(SandboxRestore restore, HypervisorConfig config)
    {
        const string Restore = nameof(HypervisorConfig.Restore);
        var fromTemplate = restore.TemplateDirectory is not null;
        var fromSnapshot = restore.SnapshotStatePath is not null || restore.SnapshotMemoryPath is not null;
        if (fromTemplate == fromSnapshot)
            throw new SandboxConfigurationException(Restore, "give a template directory or a snapshot's state and memory files, not both or neither");
        // Only the shape: whether the files are there is checked by each start, which uses them. A driver re-attaching
        // to (or stopping, or removing) a sandbox whose template or snapshot is gone must not be refused for it.
        if (fromTemplate)
        {
            RequirePath($"{Restore}.{nameof(SandboxRestore.TemplateDirectory)}", restore.TemplateDirectory);
            if (restore.Drives.Count > 0)
                throw new SandboxConfigurationException($"{Restore}.{nameof(SandboxRestore.Drives)}", "a template clone's drives are the template's (its manifest); drive bindings are for a restore of snapshot files");
            if (!restore.Resume)
                throw new SandboxConfigurationException($"{Restore}.{nameof(SandboxRestore.Resume)}", "a template clone is always resumed; load a snapshot to keep it paused");
        }
        else
        {
            RequirePath($"{Restore}.{nameof(SandboxRestore.SnapshotStatePath)}", restore.SnapshotStatePath);
            RequirePath($"{Restore}.{nameof(SandboxRestore.SnapshotMemoryPath)}", restore.SnapshotMemoryPath);
            ValidateDrives($"{Restore}.{nameof(SandboxRestore.Drives)}", restore.Drives);
        }
        // A template clone's pool is the template's placeholders (its own copies, checked against the template at
        // start); a snapshot restore opens the recorded drives themselves, which are another VM's.
        if (config.BlockPoolSize != 0 && !fromTemplate)
            throw new SandboxConfigurationException(nameof(HypervisorConfig.BlockPoolSize), "must be 0 for a sandbox restored from a snapshot: its drives are the snapshot's (a template clone may have the template's pool)");
        if (config.Metadata is not null)
            throw new SandboxConfigurationException(nameof(HypervisorConfig.Metadata), "is restored with the snapshot; it cannot be set for a restored sandbox");
        if (config.MemoryHotplug is not null)
            throw new SandboxConfigurationException(nameof(HypervisorConfig.MemoryHotplug), "is the snapshot's; it cannot be set for a restored sandbox");
    }

    // Bound over (or, in a jail, made at) the recorded path: an absolute path with no . or .. parts, each named once.
    private static void ValidateDrives(string property, IReadOnlyList<Kiln.Vm.DriveBinding>? drives)
    {
        if (drives is null)
            throw new SandboxConfigurationException(property, "is null; give an empty list for none");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var drive in drives)
        {
            if (drive is null || string.IsNullOrWhiteSpace(drive.Source) || string.IsNullOrWhiteSpace(drive.RecordedPath))
                throw new SandboxConfigurationException(property, "each drive binding needs the recorded path and this restore's file");
            if (!Kiln.Vm.DriveBinding.IsPlainAbsolutePath(drive.RecordedPath))
                throw new SandboxConfigurationException(property, $"the recorded path '{drive.RecordedPath}' must be absolute, without . or .. parts");
            if (!Path.IsPathFullyQualified(drive.Source))
                throw new SandboxConfigurationException(property, $"the file '{drive.Source}' for {drive.RecordedPath} must be an absolute path");
            if (!seen.Add(drive.RecordedPath))
                throw new SandboxConfigurationException(property, $"the recorded path '{drive.RecordedPath}' is bound twice");
        }
    }

    private static void RequirePath(string property, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new SandboxConfigurationException(property, "is empty");
    }
}
