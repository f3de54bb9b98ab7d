using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Kiln.Sandbox;

namespace Kiln.Tests.Sandbox;

public sealed class SandboxIdsTests
{
    private const string Root = "/tmp/kr";

    [Theory]
    [InlineData("a")]
    [InlineData("sandbox-1")]
    [InlineData("A.b_c-9")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123")]
    public void Safe_single_segments_are_accepted(string id) => Assert.True(SandboxIds.IsValid(id, Root, out var reason), reason);

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("-a")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    [InlineData("a b")]
    [InlineData("a\nb")]
    [InlineData("é")]
    [InlineData("01234567890123456789012345678901234567890123456789012345678901234")]
    public void Unsafe_ids_are_refused_with_a_reason(string id)
    {
        Assert.False(SandboxIds.IsValid(id, Root, out var reason));
        Assert.False(string.IsNullOrEmpty(reason));
        var e = Assert.Throws<InvalidSandboxIdException>(() => SandboxIds.Validate(id, Root));
        Assert.Equal(reason, e.Reason);
    }

    [Fact]
    public void An_id_that_pushes_the_socket_path_past_107_bytes_is_refused()
    {
        var root = "/tmp/" + new string('r', 60);
        var id = new string('i', 40); // root/id/firecracker.sock = 66 + 1 + 40 + 17 = 124 bytes
        Assert.False(SandboxIds.IsValid(id, root, out var reason));
        Assert.Contains("107", reason);
        var fits = new string('i', 107 - root.Length - 1 - "/firecracker.sock".Length);
        Assert.True(SandboxIds.IsValid(fits, root, out _));
        Assert.False(SandboxIds.IsValid(fits + "i", root, out _));
    }

    private static Arbitrary<string> ValidIds()
    {
        const string first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const string rest = first + "._-";
        var gen = from head in Gen.Elements(first.ToCharArray())
                  from len in Gen.Choose(0, 63)
                  from tail in Gen.ArrayOf(Gen.Elements(rest.ToCharArray()), len)
                  select head + new string(tail);
        return gen.ToArbitrary();
    }

    [Property]
    public Property Every_id_of_the_documented_grammar_is_accepted() =>
        Prop.ForAll(ValidIds(), id => SandboxIds.IsValid(id, Root, out _));

    [Property]
    public bool Every_accepted_id_is_one_path_segment_inside_the_root(string id)
    {
        if (!SandboxIds.IsValid(id, Root, out _))
            return true;
        var dir = SandboxPaths.For(Root, id).Directory;
        return Path.GetDirectoryName(dir) == Root && Path.GetFileName(dir) == id && id is not ("." or "..")
            && id.Length <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');
    }
}
