namespace Kiln.FakeFirecracker.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Version_has_three_parts() => Assert.Equal(3, Kiln.KilnInfo.Version.Split('.').Length);
}
