namespace Kiln.Cli.Tests;

/// <summary>
/// A kiln pause interrupted (Ctrl-C) after Firecracker carried it out but before its answer came (the stand-in's
/// FAKE_FC_SLOW_ANSWER): inspect says the state is in doubt, and the next kiln process asks Firecracker before acting.
/// </summary>
public sealed class StateInDoubtCommandTests : IAsyncDisposable
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Fact]
    public async Task An_interrupted_pause_that_happened_is_shown_in_doubt_and_the_next_resume_asks_firecracker_and_resumes()
    {
        _root.Environment["FAKE_FC_SLOW_ANSWER"] = "PATCH /vm#1=5000";
        await _root.RunDetachedAsync("doubt");
        var log = Path.Combine(_root.Root, "doubt", "firecracker.log");

        await using (var pause = _root.Start("pause", "doubt"))
        {
            await Eventually(() => File.Exists(log) && File.ReadAllText(log).Contains("Patch request on \"/vm\"", StringComparison.Ordinal), "the PATCH reached the VMM");
            pause.Signal(NativeMethods.SIGINT);
            var interrupted = await pause.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            Assert.True(interrupted.ExitCode != 0, interrupted.ToString());
        }

        var inspect = await _root.RunAsync("inspect", "doubt", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal("Running", inspect.Json().GetProperty("state").GetString());
        Assert.True(inspect.Json().GetProperty("stateInDoubt").GetBoolean());
        Assert.Contains("in doubt", (await _root.RunAsync("inspect", "doubt")).Stdout, StringComparison.Ordinal);

        // Taken as Running, it is Paused: the resume asks first, so it resumes instead of being refused.
        var resume = await _root.RunAsync("resume", "doubt");
        Assert.True(resume.ExitCode == 0, resume.ToString());
        var after = (await _root.RunAsync("inspect", "doubt", "--json")).Json();
        Assert.Equal("Running", after.GetProperty("state").GetString());
        Assert.False(after.GetProperty("stateInDoubt").GetBoolean());
        Assert.Equal(0, (await _root.RunAsync("stop", "doubt")).ExitCode);
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
