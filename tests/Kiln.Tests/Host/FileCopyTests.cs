using System.Diagnostics;
using System.Security.Cryptography;
using Kiln.Host;
using Kiln.Tests.Support;

namespace Kiln.Tests.Host;

public sealed class FileCopyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>512-byte blocks the file system allocated to <paramref name="path"/> (stat's %b).</summary>
    private static long AllocatedBlocks(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%b", path]) { RedirectStandardOutput = true })!;
        var text = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return long.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_copy_without_reflink_keeps_a_sparse_files_holes_and_its_bytes()
    {
        using var root = new TempRoot();
        var source = root.Combine("sparse.img");
        await using (var file = new FileStream(source, FileMode.CreateNew, FileAccess.Write))
        {
            file.SetLength(64L << 20); // 64 MiB of hole…
            var data = RandomNumberGenerator.GetBytes(8192);
            file.Position = 0;
            await file.WriteAsync(data, Ct); // …with data at the start,
            file.Position = 32L << 20;
            await file.WriteAsync(data, Ct); // in the middle,
            file.Position = (64L << 20) - 4096;
            await file.WriteAsync(data.AsMemory(0, 4096), Ct); // and at the very end.
        }

        var method = await FileCopy.CloneOrCopyAsync(source, root.Combine("copy.img"), Ct);

        Assert.SkipWhen(method == CopyMethod.Reflink, "this temp directory's file system makes reflinks; the fallback copy is not used");
        Assert.Equal(new FileInfo(source).Length, new FileInfo(root.Combine("copy.img")).Length);
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(source)), SHA256.HashData(File.ReadAllBytes(root.Combine("copy.img"))));
        // A dense copy would allocate 64 MiB (131 072 blocks); the source has ~20 KiB of data.
        Assert.True(AllocatedBlocks(root.Combine("copy.img")) <= AllocatedBlocks(source) + 64,
            $"copy {AllocatedBlocks(root.Combine("copy.img"))} blocks, source {AllocatedBlocks(source)}");
    }

    [Fact]
    public async Task A_copy_of_a_file_that_is_all_hole_allocates_nothing()
    {
        using var root = new TempRoot();
        var source = root.Combine("empty.img");
        await using (var file = new FileStream(source, FileMode.CreateNew, FileAccess.Write))
            file.SetLength(16L << 20);

        var method = await FileCopy.CloneOrCopyAsync(source, root.Combine("copy.img"), Ct);

        Assert.SkipWhen(method == CopyMethod.Reflink, "this temp directory's file system makes reflinks; the fallback copy is not used");
        Assert.Equal(16L << 20, new FileInfo(root.Combine("copy.img")).Length);
        Assert.Equal(0, AllocatedBlocks(root.Combine("copy.img")));
    }
}
