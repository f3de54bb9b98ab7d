// What a running guest's memory is made of, as Firecracker reports it: the boot memory, what virtio-mem has plugged
// on top, and what the balloon holds back. Only what the devices confirm counts, not what was asked for.
namespace Kiln.Vm;

/// <summary>How guest memory is changed after boot.</summary>
public enum MemoryResizeMechanism
{
    /// <summary>Firecracker's virtio-mem region (memory hot-plug): grows above the boot memory and shrinks back to it.</summary>
    VirtioMem,

    /// <summary>The virtio-balloon device: inflating takes memory from the guest below its boot size; deflating gives it back.</summary>
    Balloon,
}

/// <summary>A guest's memory as its devices report it.</summary>
/// <param name="BootMib">The boot memory (<c>mem_size_mib</c>).</param>
/// <param name="PluggedMib">What virtio-mem has plugged (0 without a region).</param>
/// <param name="RequestedPlugMib">What virtio-mem was asked to plug; null without a region.</param>
/// <param name="BalloonTargetMib">What the balloon was asked to hold; null without a balloon.</param>
/// <param name="BalloonActualMib">
/// What the balloon holds, from its statistics; null without a balloon or with statistics off (then only the target is
/// known, and <see cref="GuestMib"/> assumes the guest reached it).
/// </param>
public sealed record GuestMemory(int BootMib, int PluggedMib, int? RequestedPlugMib, int? BalloonTargetMib, int? BalloonActualMib)
{
    /// <summary>What the guest can use: boot memory plus plugged, less what the balloon holds.</summary>
    public int GuestMib => BootMib + PluggedMib - (BalloonActualMib ?? BalloonTargetMib ?? 0);

    /// <summary>Whether the devices hold what they were asked to.</summary>
    public bool Settled => (RequestedPlugMib is null || RequestedPlugMib == PluggedMib)
        && (BalloonActualMib is null || BalloonActualMib == BalloonTargetMib);
}

/// <summary>What <see cref="Microvm.ResizeMemoryAsync"/> did and what the guest has now.</summary>
/// <param name="RequestedMib">The guest memory asked for.</param>
/// <param name="Mechanism">The device that made the change (virtio-mem above the boot memory, the balloon below it).</param>
/// <param name="Memory">The guest's memory once the devices settled, or when the settle wait ended.</param>
public sealed record MemoryResizeOutcome(int RequestedMib, MemoryResizeMechanism Mechanism, GuestMemory Memory);
