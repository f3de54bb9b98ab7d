// A sandbox network outlives neither its VMM nor a killed kiln: the next kiln to notice removes it (root only; the
// namespace is /run/netns/kiln-NAME, host-wide, so each test takes a name of its own).
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace Kiln.Cli.Tests;

/// <summary>
/// Runs alone, after the parallel tests: every root kiln that runs ps or starts a networked sandbox sweeps every dead
/// network on the host, so a test running beside these would remove the network they must first see left behind.
/// </summary>
[CollectionDefinition(DisableParallelization = true)]
public sealed class HostWideSweepsRunAlone;

[Collection(typeof(HostWideSweepsRunAlone))]
public sealed class NetworkSweepCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await _root.DisposeAsync();
        // What a failing test left: the kiln processes are gone now, so their networks have dead owners.
        foreach (var name in _names)
        {
            if (File.Exists("/run/netns/kiln-" + name))
                await _root.RunAsync("ps");
        }
    }

    private readonly List<string> _names = [];

    private string UniqueName()
    {
        var name = "ks" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        _names.Add(name);
        return name;
    }

    private static void RequireRoot() => Assert.SkipUnless(Environment.UserName == "root", "needs root (network namespaces, TAP devices)");

    private async Task<int> WaitForRunningAsync(string name)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var entry = (await _root.RunAsync("ps", "--json")).Json().EnumerateArray().FirstOrDefault(s => s.GetProperty("name").GetString() == name);
            if (entry.ValueKind != JsonValueKind.Undefined && entry.GetProperty("state").GetString() == "Running")
                return entry.GetProperty("pid").GetInt32();
        }
        throw new TimeoutException($"{name} did not reach Running");
    }

    private static async Task WaitUntilGoneAsync(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            await process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (ArgumentException)
        {
            // Already gone.
        }
    }

    [Fact]
    public async Task Ps_removes_the_network_of_a_foreground_kiln_killed_by_sigkill()
    {
        RequireRoot();
        var name = UniqueName();
        await using var run = _root.Start("run", "--name", name, "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--network", "isolated");
        var vmm = await WaitForRunningAsync(name);
        Assert.True(File.Exists("/run/netns/kiln-" + name));

        // SIGKILL runs nothing in kiln; the VMM dies of its parent-death signal and leaves the network behind.
        run.Signal(NativeMethods.SIGKILL);
        await run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        await WaitUntilGoneAsync(vmm);
        var leftBehind = File.Exists("/run/netns/kiln-" + name);
        var ps = await _root.RunAsync("ps");

        Assert.True(leftBehind, "the network was gone before anything noticed the dead VMM");
        Assert.True(ps.ExitCode == 0, ps.ToString());
        Assert.Contains("Exited", ps.Stdout);
        Assert.False(File.Exists("/run/netns/kiln-" + name), "ps left the dead sandbox's namespace");
        Assert.False(File.Exists($"/run/kiln/net/sandbox-{name}.json"));
        Assert.Equal(JsonValueKind.Null, (await _root.RunAsync("inspect", name, "--json")).Json().GetProperty("network").ValueKind);
    }

    [Fact]
    public async Task Rm_of_a_sandbox_whose_detached_vmm_was_killed_removes_its_network()
    {
        RequireRoot();
        var name = UniqueName();
        await _root.RunDetachedAsync(name, "--network", "isolated");
        var vmm = (await _root.PsAsync(name)).GetProperty("pid").GetInt32();

        Assert.Equal(0, NativeMethods.kill(vmm, NativeMethods.SIGKILL));
        await WaitUntilGoneAsync(vmm);
        var leftBehind = File.Exists("/run/netns/kiln-" + name);
        var rm = await _root.RunAsync("rm", name);

        Assert.True(leftBehind);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.False(File.Exists("/run/netns/kiln-" + name));
        Assert.False(File.Exists($"/run/kiln/net/sandbox-{name}.json"));
    }
}
