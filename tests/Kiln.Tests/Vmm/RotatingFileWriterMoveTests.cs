using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Vmm;

public sealed class RotatingFileWriterMoveTests
{
    [Fact]
    public void Moving_the_writer_appends_what_it_wrote_to_the_new_file_and_continues_there()
    {
        using var root = new TempRoot();
        File.WriteAllText(root.Combine("new.log"), "earlier run\n");
        using var writer = new RotatingFileWriter(root.Combine("old.log"), OutputRotation.Default);
        writer.Write("before\n"u8);

        writer.MoveTo(root.Combine("new.log"));
        writer.Write("after\n"u8);

        Assert.False(File.Exists(root.Combine("old.log")));
        Assert.Equal(root.Combine("new.log"), writer.Path);
        Assert.Equal("earlier run\nbefore\nafter\n", File.ReadAllText(root.Combine("new.log")));
    }
}
