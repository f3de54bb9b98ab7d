using Kiln.Api;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Vmm;

public sealed class FirecrackerVersionProbeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // A stand-in that prints a chosen version, like firecracker --version (a log line follows the version).
    private static string Binary(TempRoot root, string version, string name = "firecracker") =>
        root.Script(name, $"echo 'Firecracker v{version}'; echo; echo '2026-11-27T00:00:00.000000000 [anonymous-instance:main] Firecracker exiting successfully. exit_code=0'; echo run >> {root.Combine(name + ".runs")}");

    [Fact]
    public async Task The_stand_in_is_a_supported_firecracker()
    {
        var version = await FirecrackerVersionProbe.EnsureSupportedAsync(SandboxTarget.FakePath, [FirecrackerFeature.MemoryHotplug, FirecrackerFeature.VsockOverride], Ct);

        Assert.Equal(new FirecrackerVersion(1, 16, 1), version);
    }

    [Fact]
    public async Task A_binary_is_asked_once_until_it_changes()
    {
        using var root = new TempRoot();
        var binary = Binary(root, "1.15.0");

        await FirecrackerVersionProbe.GetVersionAsync(binary, Ct);
        await FirecrackerVersionProbe.GetVersionAsync(binary, Ct);
        Assert.Single(await File.ReadAllLinesAsync(root.Combine("firecracker.runs"), Ct));

        // An upgrade in place: a new modification time means a new answer.
        File.SetLastWriteTimeUtc(binary, DateTime.UtcNow.AddMinutes(1));
        await FirecrackerVersionProbe.GetVersionAsync(binary, Ct);
        Assert.Equal(2, (await File.ReadAllLinesAsync(root.Combine("firecracker.runs"), Ct)).Length);
    }

    [Theory]
    [InlineData("1.9.0")]
    [InlineData("1.17.0")]
    [InlineData("2.0.0")]
    public async Task An_unsupported_release_is_refused_naming_the_supported_range(string version)
    {
        using var root = new TempRoot();

        var e = await Assert.ThrowsAsync<UnsupportedFirecrackerVersionException>(
            () => FirecrackerVersionProbe.EnsureSupportedAsync(Binary(root, version), cancellationToken: Ct));

        Assert.Equal(FirecrackerVersion.Parse(version), e.Version);
        Assert.Contains($"Kiln supports {SupportedFirecracker.Minimum} up to 1.16.x", e.Message);
    }

    [Theory]
    [InlineData("1.13.0", "memory")]
    [InlineData("1.12.1", "pci")]
    [InlineData("1.15.2", "vsock")]
    [InlineData("1.13.0", "hinting")]
    [InlineData("1.13.0", "reporting")]
    public async Task A_feature_newer_than_the_binary_is_refused_before_anything_starts(string version, string feature)
    {
        using var root = new TempRoot();
        var wanted = feature switch
        {
            "memory" => FirecrackerFeature.MemoryHotplug,
            "pci" => FirecrackerFeature.Pci,
            "hinting" => FirecrackerFeature.BalloonFreePageHinting,
            "reporting" => FirecrackerFeature.BalloonFreePageReporting,
            _ => FirecrackerFeature.VsockOverride,
        };

        var e = await Assert.ThrowsAsync<FirecrackerFeatureUnavailableException>(
            () => FirecrackerVersionProbe.EnsureSupportedAsync(Binary(root, version), [wanted], Ct));

        Assert.Same(wanted, e.Feature);
        Assert.Contains($"needs Firecracker {wanted.Since} or newer", e.Message);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task A_balloon_with_free_page_hinting_or_reporting_on_an_older_firecracker_fails_at_the_version_step_and_runs_nothing_else(
        bool hinting, bool reporting)
    {
        using var root = new TempRoot();
        var description = Kiln.Tests.Vm.MicrovmFixture.Description(root) with
        {
            Balloon = new Balloon { AmountMib = 0, DeflateOnOom = true, FreePageHinting = hinting, FreePageReporting = reporting },
        };
        var options = Kiln.Tests.Vm.MicrovmFixture.Options(root) with { FirecrackerPath = Binary(root, "1.13.0") };

        var e = await Assert.ThrowsAsync<Kiln.Vm.MicrovmBootException>(() => Kiln.Vm.Microvm.BootAsync(description, options, Ct));

        Assert.Equal("version", e.Step);
        var refused = Assert.IsType<FirecrackerFeatureUnavailableException>(e.InnerException);
        Assert.Same(hinting ? FirecrackerFeature.BalloonFreePageHinting : FirecrackerFeature.BalloonFreePageReporting, refused.Feature);
        Assert.Equal(
            $"balloon free page {(hinting ? "hinting" : "reporting")} needs Firecracker 1.14.0 or newer; {options.FirecrackerPath} is Firecracker 1.13.0.",
            refused.Message);
        Assert.Single(await File.ReadAllLinesAsync(root.Combine("firecracker.runs"), Ct)); // only --version ran
        Assert.False(File.Exists(root.Combine("console.log")));
    }

    [Fact]
    public async Task A_balloon_without_free_page_features_needs_nothing_newer()
    {
        using var root = new TempRoot();
        var description = Kiln.Tests.Vm.MicrovmFixture.Description(root) with
        {
            Balloon = new Balloon { AmountMib = 0, DeflateOnOom = true, FreePageHinting = false, FreePageReporting = false },
        };

        Assert.Empty(Kiln.Vm.Microvm.RequiredFeatures(description));
    }

    [Theory]
    [InlineData("echo 'not a version'")]
    [InlineData("echo oops >&2; exit 3")]
    public async Task A_binary_that_prints_no_version_is_a_typed_error(string body)
    {
        using var root = new TempRoot();

        await Assert.ThrowsAsync<FirecrackerVersionUnknownException>(
            () => FirecrackerVersionProbe.GetVersionAsync(root.Script("fc", body), Ct));
    }

    [Fact]
    public async Task A_sandbox_with_an_unsupported_firecracker_fails_at_the_version_step_and_spawns_nothing()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root) with { FirecrackerPath = Binary(root, "1.9.0") };
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("old", config, Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => driver.StartAsync(Ct));

        Assert.Equal("version", e.Step);
        Assert.IsType<UnsupportedFirecrackerVersionException>(e.InnerException);
        Assert.False(File.Exists(driver.ConsolePath));
    }
}
