// Images are made by the tests themselves: sparse files whose first sectors are written byte by byte (an MBR, a GPT
// header, a FAT boot sector), and, where the machine has them, a real ext4 from mkfs.ext4 and blkid's own verdict as
// a cross-check of the hand-made ones.
using System.Buffers.Binary;
using System.Diagnostics;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

public sealed class PartitionTableTests : IDisposable
{
    private const long ImageBytes = 64L * 1024 * 1024;
    private readonly TempRoot _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A sparse image of <see cref="ImageBytes"/> whose first bytes are <paramref name="head"/>.</summary>
    private string Image(byte[] head, string name = "disk.img", long length = ImageBytes)
    {
        var path = _dir.Combine(name);
        using var file = File.Create(path);
        file.SetLength(length);
        file.Write(head, 0, (int)Math.Min(head.Length, length));
        return path;
    }

    private static byte[] Sectors(int count = 2) => new byte[count * 512];

    /// <summary>Writes MBR entry <paramref name="index"/> and the 0x55AA signature.</summary>
    private static byte[] WithMbrEntry(byte[] head, int index, byte bootIndicator, byte type, uint firstLba, uint sectors)
    {
        var entry = head.AsSpan(0x1BE + index * 16, 16);
        entry[0] = bootIndicator;
        entry[4] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], firstLba);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[12..], sectors);
        head[510] = 0x55;
        head[511] = 0xAA;
        return head;
    }

    private static byte[] LinuxMbr() => WithMbrEntry(Sectors(), 0, 0x00, 0x83, 2048, (uint)(ImageBytes / 512) - 2048);

    private static byte[] Gpt()
    {
        var head = WithMbrEntry(Sectors(), 0, 0x00, 0xEE, 1, (uint)(ImageBytes / 512) - 1);
        "EFI PART"u8.CopyTo(head.AsSpan(512));
        return head;
    }

    /// <summary>The first sector of a FAT32 filesystem as mkfs.fat writes it: jump, OEM name, BPB, 0x55AA.</summary>
    private static byte[] Fat32BootSector()
    {
        var head = Sectors();
        head[0] = 0xEB;
        head[1] = 0x58;
        head[2] = 0x90;
        "mkfs.fat"u8.CopyTo(head.AsSpan(3));
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(0x0B), 512);
        head[0x0D] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(0x0E), 32);
        head[0x10] = 2;
        head[0x15] = 0xF8;
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(0x20), (uint)(ImageBytes / 512)); // total sectors
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(0x24), 1009); // sectors per FAT
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(0x2C), 2); // root directory cluster
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(0x30), 1); // FS information sector
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(0x32), 6); // backup boot sector
        head[0x42] = 0x29; // extended boot signature
        "NO NAME    "u8.CopyTo(head.AsSpan(0x47));
        "FAT32   "u8.CopyTo(head.AsSpan(0x52));
        head[510] = 0x55;
        head[511] = 0xAA;
        return head;
    }

    [Fact]
    public void A_bare_ext4_image_from_mkfs_has_no_partition_table_and_boots_from_the_whole_disk()
    {
        var mkfs = new[] { "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4" }.FirstOrDefault(File.Exists);
        Assert.SkipWhen(mkfs is null, "mkfs.ext4 (e2fsprogs) is not installed");
        var image = Image([], "rootfs.ext4");
        Run(mkfs!, "-q", "-F", image);

        Assert.Equal(PartitionTableKind.None, PartitionTable.Detect(image));
        Assert.Equal(new RootDeviceChoice("/dev/vda", RootDeviceReason.WholeDisk), RootDevice.Choose(image, []));
    }

    [Fact]
    public void An_ext4_superblock_written_by_hand_has_no_partition_table()
    {
        var head = new byte[2048];
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(1024 + 0x38), 0xEF53);

        Assert.Equal(PartitionTableKind.None, PartitionTable.Detect(Image(head)));
    }

    [Fact]
    public void An_mbr_with_a_linux_partition_boots_from_the_first_partition()
    {
        var image = Image(LinuxMbr());

        Assert.Equal(PartitionTableKind.Mbr, PartitionTable.Detect(image));
        Assert.Equal(new RootDeviceChoice("/dev/vda1", RootDeviceReason.MbrPartitionTable), RootDevice.Choose(image, []));
    }

    [Fact]
    public void A_gpt_behind_its_protective_mbr_boots_from_the_first_partition()
    {
        var image = Image(Gpt());

        Assert.Equal(PartitionTableKind.Gpt, PartitionTable.Detect(image));
        Assert.Equal(new RootDeviceChoice("/dev/vda1", RootDeviceReason.GptPartitionTable), RootDevice.Choose(image, []));
    }

    [Fact]
    public void A_protective_mbr_without_a_gpt_header_behind_it_is_no_partition_table() =>
        Assert.Equal(PartitionTableKind.None, PartitionTable.Detect(Image(WithMbrEntry(Sectors(), 0, 0, 0xEE, 1, 1000))));

    [Fact]
    public void A_signature_with_four_empty_entries_is_no_partition_table() =>
        Assert.Equal(PartitionTableKind.None, PartitionTable.Detect(Image(WithMbrEntry(Sectors(), 0, 0, 0, 0, 0))));

    [Theory]
    [InlineData(0x01)]
    [InlineData(0x7F)]
    [InlineData(0xFF)]
    public void A_boot_indicator_other_than_0_or_0x80_means_boot_code_not_a_partition_table(byte bootIndicator) =>
        Assert.Equal(PartitionTableKind.None, PartitionTable.Detect(Image(WithMbrEntry(LinuxMbr(), 2, bootIndicator, 0x83, 1, 1))));

    [Fact]
    public void A_fat_boot_sector_ends_in_0x55AA_but_is_a_filesystem_not_a_partition_table()
    {
        // Its boot code happens to look like a partition entry with a valid boot indicator: still a filesystem.
        var head = WithMbrEntry(Fat32BootSector(), 0, 0x00, 0x0C, 63, 1000);

        Assert.Equal(PartitionTableKind.None, PartitionTable.Detect(Image(head)));
    }

    [Theory]
    [InlineData("EXFAT   ")]
    [InlineData("NTFS    ")]
    public void Exfat_and_ntfs_boot_sectors_are_filesystems(string oemName)
    {
        var head = WithMbrEntry(Sectors(), 0, 0x00, 0x07, 63, 1000);
        System.Text.Encoding.ASCII.GetBytes(oemName).CopyTo(head, 3);

        Assert.Equal(PartitionTableKind.None, PartitionTable.Detect(Image(head)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(511)]
    [InlineData(700)]
    public void An_image_shorter_than_the_probe_is_read_as_far_as_it_goes(int length)
    {
        var image = Image(LinuxMbr(), length: length);

        Assert.Equal(length >= 512 ? PartitionTableKind.Mbr : PartitionTableKind.None, PartitionTable.Detect(image));
    }

    [Theory]
    [InlineData("/dev/vda2")]
    [InlineData("/dev/vdb")]
    [InlineData("PARTUUID=1234-01")]
    public void A_configured_root_wins_over_the_partition_table(string root)
    {
        var image = Image(LinuxMbr());

        var choice = RootDevice.Choose(image, [("console", "ttyS0"), ("root", root)]);

        Assert.Equal(new RootDeviceChoice(root, RootDeviceReason.Configured), choice);
    }

    [Fact]
    public void A_configured_root_is_taken_without_reading_the_image() =>
        Assert.Equal(RootDeviceReason.Configured, RootDevice.Choose(_dir.Combine("missing.img"), [("root", "/dev/vdc")]).Reason);

    [Fact]
    public void Without_an_image_or_a_configured_root_there_is_no_root_device() =>
        Assert.Equal(new RootDeviceChoice(null, RootDeviceReason.NoImage), RootDevice.Choose(null, []));

    [Property(MaxTest = 300)]
    public bool Bytes_without_the_0x55AA_signature_or_a_gpt_header_are_never_a_partition_table(byte[] bytes)
    {
        var head = new byte[1024];
        (bytes ?? []).AsSpan(0, Math.Min(bytes?.Length ?? 0, 1024)).CopyTo(head);
        head[511] = 0x00;
        head[512] = 0x00;
        return PartitionTable.Detect(head) == PartitionTableKind.None;
    }

    [Property(MaxTest = 300)]
    public Property Any_used_entry_with_a_valid_boot_indicator_makes_an_mbr()
    {
        var entries =
            from slot in Gen.Choose(0, 3)
            from active in Gen.Elements<byte>(0x00, 0x80)
            from type in Gen.Choose(1, 255).Where(t => t != 0xEE).Select(t => (byte)t)
            from first in Gen.Choose(1, int.MaxValue).Select(v => (uint)v)
            from length in Gen.Choose(1, int.MaxValue).Select(v => (uint)v)
            select (slot, active, type, first, length);
        return Prop.ForAll(entries.ToArbitrary(), e =>
            PartitionTable.Detect(WithMbrEntry(Sectors(), e.slot, e.active, e.type, e.first, e.length)) == PartitionTableKind.Mbr);
    }

    // blkid's "PMBR" is a protective MBR with no valid GPT behind it: the guest's kernel finds no partitions there.
    [Theory]
    [InlineData("mbr", "dos")]
    [InlineData("gpt-protective-only", "PMBR")]
    [InlineData("fat32", "")]
    [InlineData("bad-boot-indicator", "")]
    public void The_hand_made_images_are_what_blkid_says_they_are(string kind, string blkidType)
    {
        var blkid = new[] { "/usr/sbin/blkid", "/sbin/blkid" }.FirstOrDefault(File.Exists);
        Assert.SkipWhen(blkid is null, "blkid (util-linux) is not installed");
        var head = kind switch
        {
            "mbr" => LinuxMbr(),
            "gpt-protective-only" => WithMbrEntry(Sectors(), 0, 0, 0xEE, 1, 1000),
            "fat32" => WithMbrEntry(Fat32BootSector(), 0, 0x00, 0x0C, 63, 1000),
            _ => WithMbrEntry(LinuxMbr(), 1, 0x12, 0x83, 1, 1),
        };
        var image = Image(head);

        var (_, pttype) = Run(blkid!, "-p", "-o", "value", "-s", "PTTYPE", image);

        Assert.Equal(blkidType, pttype.Trim());
        Assert.Equal(blkidType == "dos" ? PartitionTableKind.Mbr : PartitionTableKind.None, PartitionTable.Detect(image));
    }

    private static (int ExitCode, string Stdout) Run(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = new Process { StartInfo = start };
        var stdout = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => stdout.AppendLine(e.Data);
        process.ErrorDataReceived += (_, _) => { };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill();
            throw new TimeoutException($"{tool} did not finish within 60 s");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.ToString());
    }
}
