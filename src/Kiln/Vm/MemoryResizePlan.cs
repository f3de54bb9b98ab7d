// Which device gives a guest the memory asked for, decided from what Firecracker says it was configured with (so an
// attached microVM, whose description this process never saw, is resized the same way), before anything changes.
using Kiln.Api;

namespace Kiln.Vm;

/// <summary>The device targets for one memory size.</summary>
/// <param name="Mechanism">The device that makes the change.</param>
/// <param name="PlugMib">The virtio-mem region's new requested size; null without a region.</param>
/// <param name="BalloonMib">The balloon's new target; null without a balloon.</param>
internal sealed record MemoryResizePlan(MemoryResizeMechanism Mechanism, int? PlugMib, int? BalloonMib)
{
    /// <exception cref="MemoryResizeException">No configured device can give <paramref name="totalMib"/>.</exception>
    public static MemoryResizePlan For(int totalMib, FullVmConfiguration config)
    {
        var boot = config.MachineConfig?.MemSizeMib
            ?? throw new MicrovmException("Firecracker's configuration has no machine-config (GET /vm/config).");
        var hotplug = config.MemoryHotplug;
        var balloon = config.Balloon;
        if (totalMib > boot)
        {
            if (hotplug is null)
            {
                throw new MemoryResizeException(totalMib, $"Cannot give the guest {totalMib} MiB: it booted with {boot} MiB and has no virtio-mem region "
                    + "(MachineDescription.MemoryHotplug) to grow into; a balloon only takes memory away.");
            }
            var block = hotplug.BlockSizeMib ?? 2;
            var plug = (totalMib - boot + block - 1) / block * block;
            var total = hotplug.TotalSizeMib ?? 0;
            if (plug > total)
                throw new MemoryResizeException(totalMib, $"Cannot give the guest {totalMib} MiB: that needs {plug} MiB plugged above its {boot} MiB boot memory, and its virtio-mem region holds {total} MiB.");
            return new MemoryResizePlan(MemoryResizeMechanism.VirtioMem, plug, balloon is null ? null : 0);
        }
        if (totalMib < boot && balloon is null)
        {
            throw new MemoryResizeException(totalMib, $"Cannot give the guest {totalMib} MiB: it booted with {boot} MiB and has no balloon "
                + "(MachineDescription.Balloon) to take memory back; virtio-mem only unplugs what it plugged.");
        }
        if (hotplug is null && balloon is null)
            throw new MemoryResizeException(totalMib, "Cannot resize the guest's memory: it has neither a virtio-mem region nor a balloon.");
        var mechanism = totalMib == boot && hotplug is not null ? MemoryResizeMechanism.VirtioMem : MemoryResizeMechanism.Balloon;
        return new MemoryResizePlan(mechanism, hotplug is null ? null : 0, balloon is null ? null : boot - totalMib);
    }
}
