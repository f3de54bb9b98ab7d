using FsCheck;
using FsCheck.Xunit;
using Kiln.Api;

namespace Kiln.Tests.Api;

public sealed class FirecrackerVersionTests
{
    [Fact]
    public void The_version_printed_by_firecracker_parses_from_its_first_line_despite_log_noise_after_it()
    {
        var output = File.ReadAllText(SpecDocument.AssetPath("samples", "version.txt"));

        Assert.Equal(new FirecrackerVersion(1, 16, 1), FirecrackerVersion.Parse(output));
    }

    [Theory]
    [InlineData("Firecracker v1.16.1", 1, 16, 1)]
    [InlineData("1.16.1", 1, 16, 1)]
    [InlineData("v1.10.0", 1, 10, 0)]
    [InlineData("  Firecracker v1.17.0-dev\n", 1, 17, 0)]
    [InlineData("\nFirecracker v2.0.3\n2026-11-26T19:21:43 [anonymous-instance:main] exiting", 2, 0, 3)]
    public void Versions_parse_from_every_shape_firecracker_prints(string text, int major, int minor, int patch)
    {
        Assert.Equal(new FirecrackerVersion(major, minor, patch), FirecrackerVersion.Parse(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Firecracker")]
    [InlineData("1.16")]
    [InlineData("1.16.1.4")]
    [InlineData("1.x.1")]
    [InlineData("-1.2.3")]
    [InlineData("Running Firecracker v1.16.1")]
    public void Text_that_is_not_a_version_is_refused_with_the_text_in_the_message(string text)
    {
        Assert.False(FirecrackerVersion.TryParse(text, out _));
        var ex = Assert.Throws<FormatException>(() => FirecrackerVersion.Parse(text));
        Assert.Contains($"'{text}'", ex.Message);
    }

    [Fact]
    public void The_wire_version_record_exposes_the_comparable_version()
    {
        Assert.Equal(new FirecrackerVersion(1, 16, 1), new FirecrackerVersionInfo { FirecrackerVersion = "1.16.1" }.Version);
    }

    [Property]
    public void Formatting_then_parsing_gives_the_same_version(NonNegativeInt major, NonNegativeInt minor, NonNegativeInt patch)
    {
        var version = new FirecrackerVersion(major.Get, minor.Get, patch.Get);

        Assert.Equal(version, FirecrackerVersion.Parse(version.ToString()));
        Assert.Equal(version, FirecrackerVersion.Parse($"Firecracker v{version}"));
    }

    [Property]
    public void Versions_order_as_their_numbers_do(NonNegativeInt a1, NonNegativeInt a2, NonNegativeInt a3, NonNegativeInt b1, NonNegativeInt b2, NonNegativeInt b3)
    {
        var a = new FirecrackerVersion(a1.Get, a2.Get, a3.Get);
        var b = new FirecrackerVersion(b1.Get, b2.Get, b3.Get);
        var expected = (a1.Get, a2.Get, a3.Get).CompareTo((b1.Get, b2.Get, b3.Get));

        Assert.Equal(Math.Sign(expected), Math.Sign(a.CompareTo(b)));
        Assert.Equal(expected < 0, a < b);
        Assert.Equal(expected > 0, a > b);
        Assert.Equal(expected <= 0, a <= b);
        Assert.Equal(expected >= 0, a >= b);
        Assert.Equal(expected == 0, a == b);
    }

    [Fact]
    public void Minor_releases_compare_numerically_not_as_text()
    {
        Assert.True(FirecrackerVersion.Parse("1.16.1") > FirecrackerVersion.Parse("1.9.0"));
        Assert.True(FirecrackerVersion.Parse("1.10.0") > FirecrackerVersion.Parse("1.9.12"));
    }

    [Theory]
    [InlineData("1.16.1", true)]
    [InlineData("1.10.0", true)]
    [InlineData("1.13.2", true)]
    [InlineData("1.16.7", true)]
    [InlineData("1.9.9", false)]
    [InlineData("1.17.0", false)]
    [InlineData("2.0.0", false)]
    [InlineData("0.25.2", false)]
    public void The_supported_range_runs_from_the_minimum_to_the_tested_minor_release(string version, bool supported)
    {
        Assert.Equal(supported, SupportedFirecracker.IsSupported(FirecrackerVersion.Parse(version)));
    }

    [Fact]
    public void The_supported_range_is_declared_once()
    {
        Assert.Equal(new FirecrackerVersion(1, 10, 0), SupportedFirecracker.Minimum);
        Assert.Equal(new FirecrackerVersion(1, 16, 1), SupportedFirecracker.MaximumTested);
    }
}
