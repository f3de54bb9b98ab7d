// Whether a disk image starts with a partition table, decided the way the guest's kernel and blkid decide it, from the
// image's first two 512-byte sectors (virtio-blk in Firecracker has 512-byte logical sectors, so GPT's header is at
// LBA 1 = byte 512). Most Firecracker root filesystems are a bare ext4 file: its first 1024 bytes are unused padding
// before the superblock, so sector 0 carries no 0x55AA signature and the image is a whole-disk filesystem.
using System.Buffers.Binary;

namespace Kiln.Vm;

/// <summary>The partition table found at the start of a disk image.</summary>
public enum PartitionTableKind
{
    /// <summary>None: the image is one filesystem on the whole disk (e.g. a bare ext4 file).</summary>
    None,

    /// <summary>A DOS/MBR table with at least one partition.</summary>
    Mbr,

    /// <summary>A GUID partition table ("EFI PART" header at LBA 1, behind a protective MBR).</summary>
    Gpt,
}

/// <summary>Detects MBR and GPT partition tables.</summary>
public static class PartitionTable
{
    /// <summary>How many bytes <see cref="Detect(ReadOnlySpan{byte})"/> looks at: the MBR and the GPT header sectors.</summary>
    public const int ProbeBytes = 2 * SectorBytes;

    private const int SectorBytes = 512;
    private const int EntriesOffset = 0x1BE;
    private const int EntryBytes = 16;
    private const byte GptProtectiveType = 0xEE;

    /// <summary>Reads the first sectors of <paramref name="imagePath"/> and detects its partition table.</summary>
    /// <exception cref="IOException">The image cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The image may not be read.</exception>
    public static PartitionTableKind Detect(string imagePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagePath);
        Span<byte> head = stackalloc byte[ProbeBytes];
        using var file = File.OpenHandle(imagePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var read = 0;
        while (read < head.Length)
        {
            var n = RandomAccess.Read(file, head[read..], read);
            if (n == 0)
                break;
            read += n;
        }
        return Detect(head[..read]);
    }

    /// <summary>
    /// Detects the partition table in an image's first bytes (fewer than <see cref="ProbeBytes"/> when the image is
    /// that short). GPT: the "EFI PART" signature at LBA 1. MBR, as blkid's dos prober and the kernel's msdos parser
    /// decide: the 0x55AA signature at byte 510, every entry's boot indicator 0x00 or 0x80 (anything else is boot code
    /// or a filesystem's data), no 0xEE (GPT protective) entry, not a FAT, exFAT or NTFS boot sector (which also end in
    /// 0x55AA), and at least one entry with a type and a length.
    /// </summary>
    public static PartitionTableKind Detect(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 2 * SectorBytes && head.Slice(SectorBytes, 8).SequenceEqual("EFI PART"u8))
            return PartitionTableKind.Gpt;
        if (head.Length < SectorBytes || head[510] != 0x55 || head[511] != 0xAA)
            return PartitionTableKind.None;
        var entries = head.Slice(EntriesOffset, 4 * EntryBytes);
        var used = 0;
        for (var i = 0; i < 4; i++)
        {
            var entry = entries.Slice(i * EntryBytes, EntryBytes);
            var bootIndicator = entry[0];
            var type = entry[4];
            var sectors = BinaryPrimitives.ReadUInt32LittleEndian(entry[12..]);
            if (bootIndicator is not (0x00 or 0x80))
                return PartitionTableKind.None;
            // A protective MBR without a GPT header behind it: the kernel's msdos parser leaves it to the EFI parser,
            // which finds no header, so the guest sees no partitions.
            if (type == GptProtectiveType)
                return PartitionTableKind.None;
            if (type != 0 && sectors != 0)
                used++;
        }
        if (IsFilesystemBootSector(head))
            return PartitionTableKind.None;
        return used > 0 ? PartitionTableKind.Mbr : PartitionTableKind.None;
    }

    /// <summary>
    /// A FAT, exFAT or NTFS boot sector: the filesystem starts at byte 0 and also ends its first sector in 0x55AA.
    /// FAT is recognised by its BIOS parameter block as the kernel checks it (a jump instruction, a power-of-two
    /// sector size of 512-4096, a power-of-two cluster size, reserved sectors, at least one FAT, a valid media byte).
    /// </summary>
    private static bool IsFilesystemBootSector(ReadOnlySpan<byte> sector)
    {
        var oemName = sector.Slice(3, 8);
        if (oemName.SequenceEqual("EXFAT   "u8) || oemName.SequenceEqual("NTFS    "u8))
            return true;
        if (sector[0] is not (0xEB or 0xE9))
            return false;
        var sectorSize = BinaryPrimitives.ReadUInt16LittleEndian(sector[0x0B..]);
        var clusterSize = sector[0x0D];
        var reserved = BinaryPrimitives.ReadUInt16LittleEndian(sector[0x0E..]);
        var fats = sector[0x10];
        var media = sector[0x15];
        return sectorSize is >= 512 and <= 4096 && (sectorSize & (sectorSize - 1)) == 0
            && clusterSize != 0 && (clusterSize & (clusterSize - 1)) == 0
            && reserved != 0 && fats != 0 && (media == 0xF0 || media >= 0xF8);
    }
}
