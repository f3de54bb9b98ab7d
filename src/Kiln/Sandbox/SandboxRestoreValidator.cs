// What a restored sandbox cannot have, refused before anything starts, each error naming the property. The machine
// is the snapshot's: the pool, MMDS and memory hot-plug are fixed at boot, so a restored sandbox asks for none of
// them. A jail it may have when it is a template clone (the manifest names every drive the chroot must hold). A sandbox network it may have: each restore sets one up and
// points the snapshot's interface at its TAP (FirecrackerHypervisor.RestoreNetwork.cs).
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
            if (!restore.Resume)
                throw new SandboxConfigurationException($"{Restore}.{nameof(SandboxRestore.Resume)}", "a template clone is always resumed; load a snapshot to keep it paused");
        }
        else
        {
            RequirePath($"{Restore}.{nameof(SandboxRestore.SnapshotStatePath)}", restore.SnapshotStatePath);
            RequirePath($"{Restore}.{nameof(SandboxRestore.SnapshotMemoryPath)}", restore.SnapshotMemoryPath);
        }
        // A template clone's pool is the template's placeholders (its own copies, checked against the template at
        // start); a snapshot restore opens the recorded drives themselves, which are another VM's.
        if (config.BlockPoolSize != 0 && !fromTemplate)
            throw new SandboxConfigurationException(nameof(HypervisorConfig.BlockPoolSize), "must be 0 for a sandbox restored from a snapshot: its drives are the snapshot's (a template clone may have the template's pool)");
        if (config.Metadata is not null)
            throw new SandboxConfigurationException(nameof(HypervisorConfig.Metadata), "is restored with the snapshot; it cannot be set for a restored sandbox");
        if (config.MemoryHotplug is not null)
            throw new SandboxConfigurationException(nameof(HypervisorConfig.MemoryHotplug), "is the snapshot's; it cannot be set for a restored sandbox");
        // A jailed VMM sees only its chroot, so every drive the snapshot recorded must be put there: a template says
        // which they are (its manifest), bare snapshot files do not.
        if (config.Jail is not null && !fromTemplate)
            throw new SandboxConfigurationException(nameof(HypervisorConfig.Jail), "needs a template for a restored sandbox: snapshot files do not say which drives the snapshot recorded, which a jail must hold (make a template of the source and clone it with the jail)");
    }

    private static void RequirePath(string property, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new SandboxConfigurationException(property, "is empty");
    }
}
