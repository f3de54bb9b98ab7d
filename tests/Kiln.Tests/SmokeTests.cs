namespace Kiln.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Version_has_three_parts() => Assert.Equal(3, KilnInfo.Version.Split('.').Length);
}
