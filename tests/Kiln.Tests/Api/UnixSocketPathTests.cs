using Kiln.Api;

namespace Kiln.Tests.Api;

public sealed class UnixSocketPathTests
{
    [Fact]
    public void A_path_of_107_bytes_is_accepted_and_one_of_108_is_refused_with_the_path_in_the_message()
    {
        var fits = "/tmp/" + new string('a', 102);
        var tooLong = fits + "b";

        Assert.True(UnixSocketPath.IsValid(fits));
        UnixSocketPath.Validate(fits);
        Assert.False(UnixSocketPath.IsValid(tooLong));
        var ex = Assert.Throws<ArgumentException>(() => UnixSocketPath.Validate(tooLong));
        Assert.Contains(tooLong, ex.Message);
        Assert.Contains("108 bytes long", ex.Message);
        Assert.Equal("tooLong", ex.ParamName);
    }

    [Fact]
    public void The_length_is_counted_in_utf8_bytes_not_characters()
    {
        var path = "/tmp/" + new string('é', 52);
        Assert.Equal(57, path.Length);

        Assert.False(UnixSocketPath.IsValid(path));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/tmp/a\0b")]
    public void Empty_paths_and_paths_with_nul_are_refused(string path)
    {
        Assert.False(UnixSocketPath.IsValid(path));
        Assert.Throws<ArgumentException>(() => UnixSocketPath.Validate(path));
    }

    [Fact]
    public void A_null_path_is_refused()
    {
        Assert.False(UnixSocketPath.IsValid(null));
        Assert.Throws<ArgumentNullException>(() => UnixSocketPath.Validate(null));
    }
}
