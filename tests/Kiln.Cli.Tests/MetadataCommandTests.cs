// kiln metadata: the MMDS document of a running sandbox, read, merged and replaced (root: it needs --network).
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Kiln.Cli.Tests;

public sealed class MetadataCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();
    private string? _name;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await _root.DisposeAsync();
        // A failing test's VMM is killed by now: ps removes the network it left.
        if (_name is not null && File.Exists("/run/netns/kiln-" + _name))
            await _root.RunAsync("ps");
    }

    [Fact]
    public async Task Metadata_prints_merges_and_replaces_the_document_the_guest_reads()
    {
        Assert.SkipUnless(Environment.UserName == "root", "needs root (network namespaces, TAP devices)");
        _name = "km" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var ct = TestContext.Current.CancellationToken;
        var first = _root.CreateFile("first.json", 0);
        var patch = _root.CreateFile("patch.json", 0);
        var put = _root.CreateFile("put.json", 0);
        await File.WriteAllTextAsync(first, """{"role": "web", "zone": "a"}""", ct);
        await File.WriteAllTextAsync(patch, """{"zone": null, "n": 2}""", ct);
        await File.WriteAllTextAsync(put, """{"fresh": true}""", ct);
        await _root.RunDetachedAsync(_name, "--network", "isolated", "--metadata", first);

        var shown = await _root.RunAsync("metadata", _name);
        var patched = await _root.RunAsync("metadata", _name, "--patch", patch);
        var replaced = await _root.RunAsync("metadata", _name, "--put", put);
        var both = await _root.RunAsync("metadata", _name, "--put", put, "--patch", patch);
        var stop = await _root.RunAsync("stop", _name);

        Assert.True(shown.ExitCode == 0, shown.ToString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"role":"web","zone":"a"}"""), JsonNode.Parse(shown.Stdout)), shown.Stdout);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"role":"web","n":2}"""), JsonNode.Parse(patched.Stdout)), patched.ToString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"fresh":true}"""), JsonNode.Parse(replaced.Stdout)), replaced.ToString());
        Assert.Equal(2, both.ExitCode);
        Assert.True(stop.ExitCode == 0, stop.ToString());
    }

    [Fact]
    public async Task Metadata_of_a_sandbox_without_a_metadata_service_is_refused_naming_it()
    {
        await _root.RunDetachedAsync("plain");

        var result = await _root.RunAsync("metadata", "plain");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Metadata: is not configured", result.Stderr);
    }

    [Fact]
    public async Task Metadata_version_v1_is_what_firecracker_is_configured_with()
    {
        Assert.SkipUnless(Environment.UserName == "root", "needs root (network namespaces, TAP devices)");
        _name = "km" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var first = _root.CreateFile("v1.json", 0);
        await File.WriteAllTextAsync(first, """{"old": "guest"}""", TestContext.Current.CancellationToken);
        await _root.RunDetachedAsync(_name, "--network", "isolated", "--metadata", first, "--metadata-version", "v1");

        var inspect = await _root.RunAsync("inspect", _name, "--json");
        var stop = await _root.RunAsync("stop", _name);

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal("V1", inspect.Json().GetProperty("vmConfig").GetProperty("mmds-config").GetProperty("version").GetString());
        Assert.True(stop.ExitCode == 0, stop.ToString());
    }

    [Theory]
    [InlineData("--metadata-version|v1", "--metadata-version needs --metadata")]
    [InlineData("--metadata-version|v3", "v3")]
    public async Task A_metadata_version_without_metadata_or_unknown_is_a_usage_error(string args, string message)
    {
        var result = await _root.RunAsync(["run", "--detach", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, .. args.Split('|')]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr);
    }
}
