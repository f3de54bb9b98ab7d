// Diff snapshots: only the guest pages written since the VM was restored with dirty-page tracking (or since the last
// snapshot), in a sparse memory file as large as guest memory whose holes are the pages left alone. They are layered
// on the memory file they follow with SnapshotLayers.ApplyDiffAsync. Kept apart from the full snapshot's files so a
// diff never replaces the base it needs.
using Kiln.Api;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>The diff snapshot's VM state file in the sandbox directory.</summary>
    public string DiffSnapshotStatePath => Path.Combine(Paths.Directory, "snapshot.diff.state");

    /// <summary>The diff snapshot's sparse memory file in the sandbox directory.</summary>
    public string DiffSnapshotMemoryPath => Path.Combine(Paths.Directory, "snapshot.diff.mem");

    /// <summary>
    /// Saves a diff snapshot of the (paused) VM: its state, and the pages dirtied since tracking began. Needs dirty
    /// page tracking, which a sandbox gets by being restored with <see cref="SandboxRestore.TrackDirtyPages"/>.
    /// </summary>
    /// <exception cref="SandboxStateException">The VM is not Paused.</exception>
    /// <exception cref="FirecrackerApiException">Firecracker refused (its fault message says why).</exception>
    public async Task<SandboxSnapshot> SaveDiffAsync(CancellationToken cancellationToken = default)
    {
        SandboxSnapshot? snapshot = null;
        await LockedAsync(async ct =>
        {
            RequireState("save a diff snapshot", SandboxState.Paused);
            await RequireVm().CreateSnapshotAsync(new SnapshotCreateParams
            {
                SnapshotPath = DiffSnapshotStatePath,
                MemFilePath = DiffSnapshotMemoryPath,
                SnapshotType = SnapshotType.Diff,
            }, ct).ConfigureAwait(false);
            snapshot = new SandboxSnapshot(DiffSnapshotStatePath, DiffSnapshotMemoryPath);
        }, cancellationToken).ConfigureAwait(false);
        return snapshot!;
    }
}
