using FsCheck.Xunit;
using Kiln.Vmm;

namespace Kiln.Tests.Vmm;

public sealed class OutputTailTests
{
    [Fact]
    public void Keeps_only_the_last_lines()
    {
        var tail = new OutputTail(maxLines: 2);
        tail.Append("one\ntwo\nthr");
        tail.Append("ee\nfour");
        Assert.Equal("two\nthree\nfour", tail.ToString());
    }

    [Fact]
    public void Long_lines_are_cut()
    {
        var tail = new OutputTail(maxLines: 4, maxLineLength: 16);
        tail.Append(new string('x', 100) + "\nok\n");
        Assert.Equal(new string('x', 16) + "\nok", tail.ToString());
    }

    [Property]
    public bool Never_holds_more_than_the_line_limit(string[] chunks)
    {
        var tail = new OutputTail(maxLines: 3, maxLineLength: 16);
        foreach (var chunk in chunks)
            tail.Append(chunk ?? "");
        var text = tail.ToString();
        return text.Split('\n').Length <= 4 && text.Length <= 4 * 17;
    }
}
