namespace Kiln.Cli.Tests;

public sealed class DemoTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private static readonly string[] ExpectedSteps = ["prepare", "create", "start", "hot-plug drive", "threads", "stop", "clean up"];

    [Fact]
    public async Task Demo_without_a_real_firecracker_uses_the_stand_in_times_every_step_and_leaves_nothing()
    {
        _root.Environment["KILN_FIRECRACKER"] = null;

        var demo = await _root.RunWithoutRootAsync("demo", "--json");

        Assert.True(demo.ExitCode == 0, demo.ToString());
        var json = demo.Json();
        Assert.Equal("fake-firecracker", json.GetProperty("hypervisor").GetString());
        Assert.Equal(KilnSandboxRoot.Fake, json.GetProperty("firecrackerPath").GetString());
        Assert.Contains("KILN_FIRECRACKER", json.GetProperty("reason").GetString());
        Assert.True(json.GetProperty("succeeded").GetBoolean());
        var steps = json.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(ExpectedSteps, steps.Select(s => s.GetProperty("step").GetString()));
        Assert.All(steps, s => Assert.True(s.GetProperty("milliseconds").GetDouble() >= 0));
        Assert.Contains("/dev/vd", steps[3].GetProperty("detail").GetString());
        Assert.Contains("vCPU 1", steps[4].GetProperty("detail").GetString());
        var root = json.GetProperty("root").GetString()!;
        Assert.StartsWith("/tmp/", root);
        Assert.False(Directory.Exists(root), "the demo must remove its temp root");
        Assert.False(Directory.Exists(root + "-files"), "the demo must remove its temp files");
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(root));
    }

    [Fact]
    public async Task Demo_says_plainly_that_it_used_the_stand_in()
    {
        _root.Environment["KILN_FIRECRACKER"] = null;

        var demo = await _root.RunAsync("demo");

        Assert.True(demo.ExitCode == 0, demo.ToString());
        Assert.Contains("stand-in fake-firecracker", demo.Stdout);
        Assert.Contains("no real VM boots", demo.Stdout);
        foreach (var step in ExpectedSteps)
            Assert.Contains(step, demo.Stdout);
        Assert.Contains("total", demo.Stdout);
    }

    [Fact]
    public async Task Demo_with_a_root_runs_there_and_leaves_it_empty()
    {
        var demo = await _root.RunAsync("demo", "--fake", "--json");

        Assert.True(demo.ExitCode == 0, demo.ToString());
        Assert.Equal(_root.Root, demo.Json().GetProperty("root").GetString());
        Assert.Contains("--fake", demo.Json().GetProperty("reason").GetString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root.Root));
    }
}
