// kiln run --network against the stand-in (root only: it opens the TAP Kiln makes in the sandbox's namespace).
using System.Security.Cryptography;

namespace Kiln.Cli.Tests;

public sealed class NetworkCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Fact]
    public async Task Run_with_an_isolated_network_shows_it_in_inspect_and_stop_removes_its_namespace()
    {
        Assert.SkipUnless(Environment.UserName == "root", "needs root (network namespaces, TAP devices)");
        // The namespace is /run/netns/kiln-NAME, host-wide: a name of this test's own.
        var name = "kn" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var metadata = _root.CreateFile("meta.json", 0);
        await File.WriteAllTextAsync(metadata, """{"hello": "guest"}""", TestContext.Current.CancellationToken);
        await _root.RunDetachedAsync(name, "--network", "isolated", "--ip", "10.9.8.7/24", "--metadata", metadata);

        var inspect = await _root.RunAsync("inspect", name, "--json");
        var human = await _root.RunAsync("inspect", name);
        var stop = await _root.RunAsync("stop", name);

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var network = inspect.Json().GetProperty("network");
        Assert.Equal("isolated", network.GetProperty("mode").GetString());
        Assert.Equal("/run/netns/kiln-" + name, network.GetProperty("namespace").GetString());
        Assert.Equal("tap0", network.GetProperty("tap").GetString());
        Assert.Equal("10.9.8.1/24", network.GetProperty("tapAddress").GetString());
        Assert.Equal("10.9.8.7/24", network.GetProperty("guestAddress").GetString());
        Assert.StartsWith("06:", network.GetProperty("guestMac").GetString());
        var mmds = inspect.Json().GetProperty("vmConfig").GetProperty("mmds-config");
        Assert.Equal("V2", mmds.GetProperty("version").GetString());
        Assert.Contains("Network", human.Stdout);
        Assert.Contains("/run/netns/kiln-" + name, human.Stdout);
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.False(File.Exists("/run/netns/kiln-" + name));
    }

    [Theory]
    [InlineData("--network|bridge", "--network")]
    [InlineData("--ip|10.0.0.2/24", "--ip needs --network")]
    [InlineData("--network|isolated|--ip|10.0.0.0/24", "--ip")]
    [InlineData("--network|netns:/nonexistent/ns", "does not exist")]
    [InlineData("--metadata|/nonexistent.json", "--metadata")]
    public async Task Bad_network_options_are_usage_errors(string args, string message)
    {
        var result = await _root.RunAsync(["run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, .. args.Split('|')]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr);
    }
}
