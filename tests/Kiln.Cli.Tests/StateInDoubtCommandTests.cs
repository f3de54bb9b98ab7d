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

    [Fact]
    public async Task An_interrupted_drive_add_that_happened_keeps_its_slot_in_doubt_and_the_next_drive_add_takes_another()
    {
        _root.Environment["FAKE_FC_SLOW_ANSWER"] = "PATCH /drives/drive_0#1=5000";
        await _root.RunDetachedAsync("slot");
        var log = Path.Combine(_root.Root, "slot", "firecracker.log");
        var first = _root.CreateFile("first.img", 1024 * 1024);
        var second = _root.CreateFile("second.img", 1024 * 1024);

        await using (var add = _root.Start("drive", "add", "slot", first))
        {
            await Eventually(() => File.Exists(log) && File.ReadAllText(log).Contains("Patch request on \"/drives/drive_0\"", StringComparison.Ordinal), "the PATCH reached the VMM");
            add.Signal(NativeMethods.SIGINT);
            var interrupted = await add.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            Assert.True(interrupted.ExitCode != 0, interrupted.ToString());
        }

        var slot0 = (await _root.RunAsync("inspect", "slot", "--json")).Json().GetProperty("poolSlots")[0];
        Assert.Equal(first, slot0.GetProperty("hostPath").GetString());
        Assert.True(slot0.GetProperty("inDoubt").GetBoolean());

        // Slot 0 holds the first file (Firecracker carried the add out): the next add asks, and takes slot 1.
        var next = await _root.RunAsync("drive", "add", "slot", second, "--json");
        Assert.True(next.ExitCode == 0, next.ToString());
        Assert.Equal(1, next.Json().GetProperty("slot").GetInt32());
        var slots = (await _root.RunAsync("inspect", "slot", "--json")).Json().GetProperty("poolSlots");
        Assert.Equal(first, slots[0].GetProperty("hostPath").GetString());
        Assert.False(slots[0].GetProperty("inDoubt").GetBoolean());
        Assert.Equal(0, (await _root.RunAsync("stop", "slot")).ExitCode);
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
