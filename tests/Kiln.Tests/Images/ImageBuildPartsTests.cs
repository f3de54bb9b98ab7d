using Kiln.Images;

namespace Kiln.Tests.Images;

// The pure parts of an image build: reading ldd's output, and the default size.
public sealed class ImageBuildPartsTests
{
    [Fact]
    public void Ldd_output_gives_the_loader_first_then_each_resolved_library_and_never_the_vdso()
    {
        const string ldd = """
                linux-vdso.so.1 (0x00007ffd2b5f4000)
                libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f80104af000)
                libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f800fe1e000)
                /lib64/ld-linux-x86-64.so.2 (0x00007f80105a2000)
            """;

        var paths = SharedLibraries.Parse(ldd, "kiln-agent", "agent");

        Assert.Equal(["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libc.so.6"], paths);
    }

    [Fact]
    public void A_library_ldd_cannot_find_fails_the_step_naming_it()
    {
        const string ldd = "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n";

        var e = Assert.Throws<ImageBuildException>(() => SharedLibraries.Parse(ldd, "kiln-agent", "agent"));

        Assert.Equal("agent", e.Step);
        Assert.Contains("libfoo.so.1", e.Message);
    }

    [Fact]
    public void A_static_executable_needs_no_library()
    {
        Assert.Empty(SharedLibraries.Parse("\tstatically linked\n", "busybox", "stage"));
    }

    [Theory]
    [InlineData(ImageBase.Tiny, 8L * 1024 * 1024, 34L * 1024 * 1024)]          // 8 + 2 + 24 MiB
    [InlineData(ImageBase.Debian, 174_000_000L, 720L * 1024 * 1024)]
    [InlineData(ImageBase.Tiny, 0L, 24L * 1024 * 1024)]
    public void The_default_size_is_the_content_plus_a_quarter_plus_headroom_in_whole_MiB(ImageBase imageBase, long content, long expected)
    {
        Assert.Equal(expected, ImageBuilder.DefaultSize(imageBase, content));
    }
}
