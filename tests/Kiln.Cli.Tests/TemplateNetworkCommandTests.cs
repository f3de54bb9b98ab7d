// kiln run --template of a template made from a sandbox with a network (root only: namespaces and TAPs). Each clone
// gets a namespace and TAP of its own, which its VMM opens at the load (network_overrides), and keeps the template's
// guest MAC and address. The namespaces are /run/netns/kiln-NAME, host-wide: names of this test's own; every sandbox
// (so every network) goes when the root is disposed, also when an assertion failed.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace Kiln.Cli.Tests;

public sealed class TemplateNetworkCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private async Task<JsonElement> NetworkOfAsync(string name)
    {
        var inspect = await _root.RunAsync("inspect", name, "--json");
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        return inspect.Json().GetProperty("network");
    }

    /// <summary>The name <c>ip netns identify</c> gives the network namespace of <paramref name="pid"/>.</summary>
    private static string NamespaceOf(int pid)
    {
        using var ip = Process.Start(new ProcessStartInfo("ip", ["netns", "identify", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
        })!;
        var output = ip.StandardOutput.ReadToEnd();
        ip.WaitForExit();
        return output.Trim();
    }

    /// <summary>The TAP names the process holds open (a TUN descriptor's fdinfo names its interface: <c>iff:</c>).</summary>
    private static List<string> OpenTaps(int pid) =>
        [.. Directory.EnumerateFiles($"/proc/{pid}/fdinfo")
            .SelectMany(f => { try { return File.ReadLines(f).ToList(); } catch (IOException) { return []; } })
            .Where(l => l.StartsWith("iff:", StringComparison.Ordinal))
            .Select(l => l["iff:".Length..].Trim())];

    [Fact]
    public async Task Clones_of_a_networked_template_each_get_a_namespace_and_tap_of_their_own_and_keep_the_templates_mac_and_address()
    {
        Assert.SkipUnless(Environment.UserName == "root", "needs root (network namespaces, TAP devices)");
        var tag = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        var (source, template, prefix) = ("ts" + tag, "tn" + tag, "tc" + tag);
        await _root.RunDetachedAsync(source, "--network", "isolated", "--ip", "10.9.8.7/24");
        var create = await _root.RunAsync("template", "create", template, "--from", source);
        Assert.True(create.ExitCode == 0, create.ToString());
        var sourceMac = (await NetworkOfAsync(source)).GetProperty("guestMac").GetString();

        var run = await _root.RunAsync("run", "--template", template, "--count", "2", "--name", prefix, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var clone in run.Json().EnumerateArray())
        {
            var name = clone.GetProperty("name").GetString()!;
            var pid = clone.GetProperty("pid").GetInt32();
            var network = await NetworkOfAsync(name);
            Assert.Equal("isolated", network.GetProperty("mode").GetString());
            Assert.Equal("/run/netns/kiln-" + name, network.GetProperty("namespace").GetString());
            Assert.Equal("tap0", network.GetProperty("tap").GetString());
            // The guest's own configuration came with the snapshot: the TAP is its gateway, the record its MAC.
            Assert.Equal("10.9.8.1/24", network.GetProperty("tapAddress").GetString());
            Assert.Equal("10.9.8.7/24", network.GetProperty("guestAddress").GetString());
            Assert.Equal(sourceMac, network.GetProperty("guestMac").GetString());
            Assert.Equal("kiln-" + name, NamespaceOf(pid));
            Assert.Equal(["tap0"], OpenTaps(pid));
        }

        var stop = await _root.RunAsync("stop", prefix + "-1");

        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.False(File.Exists($"/run/netns/kiln-{prefix}-1"));
        Assert.True(File.Exists($"/run/netns/kiln-{prefix}-2"));
        Assert.Equal("Running", (await _root.PsAsync(prefix + "-2")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task Network_none_for_a_networked_template_is_a_usage_error_and_makes_nothing()
    {
        Assert.SkipUnless(Environment.UserName == "root", "needs root (network namespaces, TAP devices)");
        var tag = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        await _root.RunDetachedAsync("ts" + tag, "--network", "isolated");
        var create = await _root.RunAsync("template", "create", "tn" + tag, "--from", "ts" + tag);
        Assert.True(create.ExitCode == 0, create.ToString());

        var run = await _root.RunAsync("run", "--template", "tn" + tag, "--network", "none", "--name", "tc" + tag);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("--network none", run.Stderr);
        Assert.False(File.Exists("/run/netns/kiln-tc" + tag));
    }
}
