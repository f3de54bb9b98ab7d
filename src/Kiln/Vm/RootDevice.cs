// Which root= the guest boots from. Kiln attaches the root filesystem image as the first drive (/dev/vda) and not as
// Firecracker's root device (which would add root=/dev/vda and cannot boot a partitioned image), so it says root=
// itself: the first partition of a partitioned image, the whole disk of a bare filesystem image (the usual Firecracker
// rootfs, e.g. the getting-started guide's ext4 file), or whatever root= the configuration gives.
namespace Kiln.Vm;

/// <summary>Why a root device was chosen.</summary>
public enum RootDeviceReason
{
    /// <summary>No root filesystem image (an initrd-only guest) and no configured root=: no root= at all.</summary>
    NoImage,

    /// <summary>The configured kernel parameters hold root=; it wins.</summary>
    Configured,

    /// <summary>The image starts with an MBR partition table: its first partition.</summary>
    MbrPartitionTable,

    /// <summary>The image starts with a GPT: its first partition.</summary>
    GptPartitionTable,

    /// <summary>The image has no partition table: the whole disk is the filesystem.</summary>
    WholeDisk,
}

/// <summary>The root device chosen for a guest, and why.</summary>
/// <param name="Device">The root= value (e.g. <c>/dev/vda</c>), or null for none.</param>
/// <param name="Reason">Why.</param>
public sealed record RootDeviceChoice(string? Device, RootDeviceReason Reason)
{
    /// <summary>One line for a person: "/dev/vda (no partition table: the whole disk)".</summary>
    public string Explanation => Reason switch
    {
        RootDeviceReason.NoImage => "none (no root filesystem image)",
        RootDeviceReason.Configured => $"{Device} (configured root=)",
        RootDeviceReason.MbrPartitionTable => $"{Device} (MBR partition table: the first partition)",
        RootDeviceReason.GptPartitionTable => $"{Device} (GPT partition table: the first partition)",
        RootDeviceReason.WholeDisk => $"{Device} (no partition table: the whole disk)",
        _ => Device ?? "none",
    };
}

/// <summary>Chooses root= for a guest whose root filesystem image is the first drive.</summary>
public static class RootDevice
{
    /// <summary>The first drive, as the guest names it.</summary>
    public const string WholeDisk = "/dev/vda";

    /// <summary>Its first partition.</summary>
    public const string FirstPartition = "/dev/vda1";

    /// <summary>
    /// A configured root= wins; otherwise, with an image, its partition table decides; without one, no root=.
    /// </summary>
    /// <param name="imagePath">The root filesystem image attached as the first drive, or null.</param>
    /// <param name="configured">The configured kernel parameters.</param>
    /// <exception cref="IOException">The image cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The image may not be read.</exception>
    public static RootDeviceChoice Choose(string? imagePath, IEnumerable<(string Key, string? Value)> configured)
    {
        ArgumentNullException.ThrowIfNull(configured);
        // The kernel takes the last root= on its command line; KernelCommandLine.Merge keeps every configured one.
        string? root = null;
        var found = false;
        foreach (var (key, value) in configured)
        {
            if (key == "root")
            {
                root = value;
                found = true;
            }
        }
        if (found)
            return new RootDeviceChoice(root, RootDeviceReason.Configured);
        if (imagePath is null)
            return new RootDeviceChoice(null, RootDeviceReason.NoImage);
        return PartitionTable.Detect(imagePath) switch
        {
            PartitionTableKind.Mbr => new RootDeviceChoice(FirstPartition, RootDeviceReason.MbrPartitionTable),
            PartitionTableKind.Gpt => new RootDeviceChoice(FirstPartition, RootDeviceReason.GptPartitionTable),
            _ => new RootDeviceChoice(WholeDisk, RootDeviceReason.WholeDisk),
        };
    }
}
