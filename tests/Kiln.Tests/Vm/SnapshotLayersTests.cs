using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

public sealed class SnapshotLayersTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const int Page = 4096;

    [Fact]
    public async Task A_diff_lays_its_written_pages_over_a_copy_of_the_base_and_leaves_the_rest_as_the_base_had_it()
    {
        using var root = new TempRoot();
        var size = 8 * 1024 * 1024;
        var baseBytes = Enumerable.Range(0, size).Select(i => (byte)(i % 251)).ToArray();
        await File.WriteAllBytesAsync(root.Combine("target.mem"), baseBytes, Ct);
        await using (var diff = new FileStream(root.Combine("diff.mem"), FileMode.CreateNew))
        {
            diff.SetLength(size); // sparse: holes where the guest wrote nothing
            diff.Position = Page;
            diff.Write(Enumerable.Repeat((byte)'x', Page).ToArray());
            diff.Position = 6 * 1024 * 1024;
            diff.Write(Enumerable.Repeat((byte)'y', 2 * Page).ToArray());
        }

        var copied = await SnapshotLayers.ApplyDiffAsync(root.Combine("diff.mem"), root.Combine("target.mem"), Ct);

        Assert.Equal(3 * Page, copied);
        var merged = await File.ReadAllBytesAsync(root.Combine("target.mem"), Ct);
        var expected = (byte[])baseBytes.Clone();
        Array.Fill(expected, (byte)'x', Page, Page);
        Array.Fill(expected, (byte)'y', 6 * 1024 * 1024, 2 * Page);
        Assert.True(expected.AsSpan().SequenceEqual(merged), "the merged memory differs from the base with the diff's pages over it");
    }

    [Fact]
    public async Task A_diff_of_another_size_than_the_base_is_refused_and_the_base_is_left_alone()
    {
        using var root = new TempRoot();
        await File.WriteAllBytesAsync(root.Combine("target.mem"), new byte[2 * Page], Ct);
        await File.WriteAllBytesAsync(root.Combine("diff.mem"), Enumerable.Repeat((byte)1, 3 * Page).ToArray(), Ct);

        var e = await Assert.ThrowsAsync<IOException>(() => SnapshotLayers.ApplyDiffAsync(root.Combine("diff.mem"), root.Combine("target.mem"), Ct));

        Assert.Contains("as large as", e.Message);
        Assert.All(await File.ReadAllBytesAsync(root.Combine("target.mem"), Ct), b => Assert.Equal(0, b));
    }
}
