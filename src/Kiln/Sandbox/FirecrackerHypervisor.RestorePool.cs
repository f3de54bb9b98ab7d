// The hot-plug pool of a template clone. A template made from a sandbox with a pool recorded its placeholders as
// writable drives drive_0 … drive_N-1; a clone gets its own copy of each (drive-drive_N in the sandbox directory, bound
// over the recorded path in the VMM's mount namespace), and those copies are its placeholders: hot-plug PATCHes a slot's
// path_on_host to the caller's file (a host path the VMM's namespace sees as the host does), hot-unplug back to the
// clone's copy (the same file the VMM opened at the recorded path). HypervisorConfig.BlockPoolSize of a clone says how
// many slots it expects, and is checked against the template at each start.
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>A clone's placeholder for slot <paramref name="slot"/>: its copy of the template's drive (TemplateCloneOptions.DrivePath).</summary>
    private static string ClonePlaceholderPath(SandboxPaths paths, int slot) =>
        Path.Combine(paths.Directory, "drive-" + BlockPool.DriveIdFor(slot));

    /// <summary>
    /// The pool of a clone of <paramref name="manifest"/>: <see cref="HypervisorConfig.BlockPoolSize"/> slots, which
    /// must be the template's writable drives drive_0 … drive_N-1 in that order; their guest device names follow the
    /// template's drive order.
    /// </summary>
    /// <exception cref="SandboxConfigurationException">The template has no such pool.</exception>
    private BlockPool ClonePool(TemplateManifest manifest)
    {
        var size = Config.BlockPoolSize;
        var drives = manifest.Drives;
        var first = -1;
        for (var at = 0; at < drives.Count && first < 0; at++)
        {
            if (drives[at].DriveId == BlockPool.DriveIdFor(0))
                first = at;
        }
        for (var i = 0; i < size; i++)
        {
            var id = BlockPool.DriveIdFor(i);
            var at = first < 0 ? -1 : first + i;
            if (at < 0 || at >= drives.Count || drives[at].DriveId != id || drives[at].IsReadOnly)
            {
                throw new SandboxConfigurationException(nameof(HypervisorConfig.BlockPoolSize),
                    $"is {size}, but template {manifest.Name} has no writable pool drive {id} in place {i} of its pool (it was made from a sandbox with a smaller pool, or none)");
            }
        }
        var paths = Paths;
        return new BlockPool(size, first, i => ClonePlaceholderPath(paths, i));
    }
}
