// A detached VM's console keeper (kiln console-keeper, started by kiln run --detach): the console log stays within
// its limit with no kiln command running, attach goes through it, it ends with the VMM (however the VMM ends), and its
// own death by SIGKILL leaves the guest running and stop/rm still leave nothing behind. The stand-in's pretend guest
// echoes serial input onto the console (a byte per character, then a "serial input: LINE" answer), which is how these
// make output.
using System.Text;

namespace Kiln.Cli.Tests;

public sealed class ConsoleKeeperTests : IAsyncDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly KilnSandboxRoot _root = new();

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private async Task<(int Vmm, int Keeper)> PidsAsync(string name)
    {
        var inspect = (await _root.RunAsync("inspect", name, "--json")).Json();
        var keeper = inspect.GetProperty("consoleKeeperPid");
        Assert.Equal(System.Text.Json.JsonValueKind.Number, keeper.ValueKind);
        return (inspect.GetProperty("pid").GetInt32(), keeper.GetInt32());
    }

    private static bool Alive(int pid) => Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    private static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(20, Ct);
        }
    }

    /// <summary>Types lines into the guest's serial input FIFO directly: no kiln command runs meanwhile.</summary>
    private static async Task TypeAsync(string inputFifo, IEnumerable<string> lines)
    {
        await using var input = new FileStream(inputFifo, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
        foreach (var line in lines)
            await input.WriteAsync(Encoding.UTF8.GetBytes(line + "\r"), Ct);
    }

    private string Console(string name, string suffix = "") => Path.Combine(_root.Root, name, "console.log" + suffix);

    private static string ReadShared(string path) =>
        File.Exists(path) ? new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete)).ReadToEnd() : "";

    [Fact]
    public async Task A_detached_vm_writing_far_more_than_its_limit_keeps_its_console_bounded_with_no_kiln_command_running()
    {
        await _root.RunDetachedAsync("chatty", "--console-limit", "4K");
        var (_, keeper) = await PidsAsync("chatty");
        Assert.True(Alive(keeper));

        // About 100 KiB of output (each character echoed, then an answer line): 25 times the 4 KiB limit.
        await TypeAsync(Path.Combine(_root.Root, "chatty", "console.in"), Enumerable.Range(0, 400).Select(i => $"line {i:D3} {new string('x', 100)}"));
        await UntilAsync(() => (ReadShared(Console("chatty", ".1")) + ReadShared(Console("chatty"))).Contains("serial input: line 399", StringComparison.Ordinal),
            "the last line's answer never reached the console log");

        Assert.True(new FileInfo(Console("chatty")).Length <= 4096, $"console.log is {new FileInfo(Console("chatty")).Length} bytes");
        Assert.True(new FileInfo(Console("chatty", ".1")).Length <= 4096);
        Assert.False(File.Exists(Console("chatty", ".2")));
        Assert.DoesNotContain('\0', ReadShared(Console("chatty")));

        var stop = await _root.RunAsync("stop", "chatty");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.False(Alive(keeper), "the keeper outlived its VMM's stop");
        Assert.False(File.Exists(Console("chatty", ".fifo")));
        var rm = await _root.RunAsync("rm", "chatty");
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }

    [Fact]
    public async Task The_keeper_ends_when_its_vmm_is_killed_and_rm_leaves_nothing()
    {
        await _root.RunDetachedAsync("victim");
        var (vmm, keeper) = await PidsAsync("victim");

        Assert.Equal(0, NativeMethods.kill(vmm, NativeMethods.SIGKILL));

        await UntilAsync(() => !Alive(keeper), "the keeper outlived its VMM");
        Assert.False(File.Exists(Console("victim", ".fifo")));
        Assert.False(File.Exists(Console("victim", ".sock")));
        Assert.Equal("Exited", (await _root.PsAsync("victim")).GetProperty("state").GetString());
        var rm = await _root.RunAsync("rm", "victim");
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }

    [Fact]
    public async Task Attach_goes_through_the_keeper_and_the_guest_echoes_what_is_typed()
    {
        await _root.RunDetachedAsync("talk");
        await using var attach = _root.Start("attach", "talk");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        for (var i = 0; !attach.Stdout.Contains("kiln-fake-guest: serial input: hello", StringComparison.Ordinal); i++)
        {
            Assert.True(DateTime.UtcNow < deadline, "the guest's answer never showed:\n" + attach.Stdout);
            await attach.Input.WriteAsync(Encoding.UTF8.GetBytes($"hello {i}\r"), Ct);
            await attach.Input.FlushAsync(Ct);
            await Task.Delay(200, Ct);
        }
        await attach.Input.WriteAsync(new byte[] { 0x1d }, Ct);
        await attach.Input.FlushAsync(Ct);
        var result = await attach.WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("through its console keeper", result.Stderr);
        // The keeper wrote the same answer into the log.
        Assert.Contains("kiln-fake-guest: serial input: hello", ReadShared(Console("talk")));
        await _root.RunAsync("stop", "talk");
    }

    [Fact]
    public async Task A_sigkilled_keeper_leaves_the_guest_running_and_stop_and_rm_still_leave_nothing()
    {
        await _root.RunDetachedAsync("orphan", "--console-limit", "4K");
        var (vmm, keeper) = await PidsAsync("orphan");

        Assert.Equal(0, NativeMethods.kill(keeper, NativeMethods.SIGKILL));
        await UntilAsync(() => !Alive(keeper), "the keeper did not die");
        // Far more output than the FIFO holds with nobody reading it: the VMM drops it (as Firecracker does with a full
        // non-blocking stdout) instead of blocking or dying.
        await TypeAsync(Path.Combine(_root.Root, "orphan", "console.in"), Enumerable.Range(0, 1000).Select(i => $"line {i:D4} {new string('y', 100)}"));

        Assert.True(Alive(vmm), "the VMM died with its keeper");
        var inspect = await _root.RunAsync("inspect", "orphan", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var json = inspect.Json();
        Assert.Equal("Running", json.GetProperty("state").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Object, json.GetProperty("vmConfig").ValueKind); // its API still answers
        Assert.Equal(System.Text.Json.JsonValueKind.Null, json.GetProperty("consoleKeeperPid").ValueKind);
        Assert.True(new FileInfo(Console("orphan")).Length <= 4096, "nothing writes the log any more");

        var stop = await _root.RunAsync("stop", "orphan");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        var rm = await _root.RunAsync("rm", "orphan");
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "orphan")));
    }
}
