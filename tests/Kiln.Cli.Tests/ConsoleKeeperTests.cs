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

    private async Task SigkillAsync(int pid)
    {
        Assert.Equal(0, NativeMethods.kill(pid, NativeMethods.SIGKILL));
        await UntilAsync(() => !Alive(pid), "the keeper did not die");
    }

    [Fact]
    public async Task Kiln_logs_restarts_a_sigkilled_keeper_and_what_the_guest_writes_then_reaches_the_bounded_log()
    {
        await _root.RunDetachedAsync("revive", "--console-limit", "4K");
        var (vmm, keeper) = await PidsAsync("revive");
        await SigkillAsync(keeper);
        var input = Path.Combine(_root.Root, "revive", "console.in");
        await TypeAsync(input, ["while dead"]);

        var logs = await _root.RunAsync("logs", "revive");

        Assert.True(logs.ExitCode == 0, logs.ToString());
        var (sameVmm, revived) = await PidsAsync("revive");
        Assert.Equal(vmm, sameVmm);
        Assert.NotEqual(keeper, revived);
        Assert.True(Alive(revived));
        // What waited in the FIFO, and then far more than the limit: bounded by the new keeper.
        await TypeAsync(input, Enumerable.Range(0, 200).Select(i => $"after {i:D3} {new string('z', 100)}"));
        await UntilAsync(() => (ReadShared(Console("revive", ".1")) + ReadShared(Console("revive"))).Contains("serial input: after 199", StringComparison.Ordinal),
            "the restarted keeper never wrote the last answer");
        Assert.True(new FileInfo(Console("revive")).Length <= 4096, $"console.log is {new FileInfo(Console("revive")).Length} bytes");
        Assert.False(File.Exists(Console("revive", ".2")));

        var stop = await _root.RunAsync("stop", "revive");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.False(Alive(revived), "the restarted keeper outlived its VMM's stop");
        var rm = await _root.RunAsync("rm", "revive");
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }

    [Fact]
    public async Task A_detached_jailed_vm_keeps_its_console_bounded_through_its_keeper_serves_logs_and_attach_and_gets_a_new_keeper_after_a_sigkill()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        // The stand-in's pretend guest echoes serial input; a real jailer would run real firecracker (see Kiln.Tests'
        // JailedConsoleKeeperSandboxTests for that pair).
        _root.Environment["KILN_JAILER"] = null;
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var id = "jck-" + Path.GetFileName(_root.Files)[3..11];
        await _root.RunDetachedAsync(id, ["--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot, "--console-limit", "4K"]);
        var instance = Path.Combine(chroot, "fake-firecracker", id);
        try
        {
            var (vmm, keeper) = await PidsAsync(id);
            Assert.True(Alive(keeper));
            var input = Path.Combine(_root.Root, id, "console.in");

            await TypeAsync(input, Enumerable.Range(0, 400).Select(i => $"line {i:D3} {new string('x', 100)}"));
            await UntilAsync(() => (ReadShared(Console(id, ".1")) + ReadShared(Console(id))).Contains("serial input: line 399", StringComparison.Ordinal),
                "the last line's answer never reached the console log");
            Assert.True(new FileInfo(Console(id)).Length <= 4096, $"console.log is {new FileInfo(Console(id)).Length} bytes");
            Assert.False(File.Exists(Console(id, ".2")));
            var logs = await _root.RunAsync("logs", id);
            Assert.True(logs.ExitCode == 0, logs.ToString());
            Assert.Contains("serial input: line 399", logs.Stdout);

            await using (var attach = _root.Start("attach", id))
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                for (var i = 0; !attach.Stdout.Contains("kiln-fake-guest: serial input: jailed hello", StringComparison.Ordinal); i++)
                {
                    Assert.True(DateTime.UtcNow < deadline, "the jailed guest's answer never showed:\n" + attach.Stdout);
                    await attach.Input.WriteAsync(Encoding.UTF8.GetBytes($"jailed hello {i}\r"), Ct);
                    await attach.Input.FlushAsync(Ct);
                    await Task.Delay(200, Ct);
                }
                await attach.Input.WriteAsync(new byte[] { 0x1d }, Ct);
                await attach.Input.FlushAsync(Ct);
                var attached = await attach.WaitAsync(TimeSpan.FromSeconds(20), Ct);
                Assert.True(attached.ExitCode == 0, attached.ToString());
                Assert.Contains("through its console keeper", attached.Stderr);
            }

            await SigkillAsync(keeper);
            Assert.True(Alive(vmm), "the jailed VMM died with its keeper");
            await TypeAsync(input, ["while the keeper was dead"]);
            logs = await _root.RunAsync("logs", id);
            Assert.True(logs.ExitCode == 0, logs.ToString());
            var (_, revived) = await PidsAsync(id);
            Assert.NotEqual(keeper, revived);
            // Both files: the 4 KiB rotation is byte-exact, so the answer may straddle console.log.1 and console.log.
            await UntilAsync(() => (ReadShared(Console(id, ".1")) + ReadShared(Console(id))).Contains("serial input: while the keeper was dead", StringComparison.Ordinal),
                "what the guest wrote while no keeper ran never reached the log");

            var stop = await _root.RunAsync("stop", id);
            Assert.True(stop.ExitCode == 0, stop.ToString());
            Assert.False(Alive(revived), "the keeper outlived its jailed VMM's stop");
            Assert.False(File.Exists(Console(id, ".fifo")));
            var rm = await _root.RunAsync("rm", id);
            Assert.True(rm.ExitCode == 0, rm.ToString());
            Assert.False(Directory.Exists(instance));
            Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
        }
        finally
        {
            await _root.RunAsync("rm", "--force", id);
        }
    }

    [Fact]
    public async Task Kiln_logs_follow_reads_the_keepers_log_across_its_rotations_without_losing_or_repeating_a_line()
    {
        await _root.RunDetachedAsync("follow", "--console-limit", "4K");
        var input = Path.Combine(_root.Root, "follow", "console.in");
        await using var follow = _root.Start("logs", "follow", "--follow");

        // Batches of about 1 KiB of console output, each awaited in the follower's output before the next: some 20 KiB
        // in all, five rotations of the 4 KiB log, none of them more than one rotation ahead of the follower.
        const int Batches = 20;
        for (var b = 0; b < Batches; b++)
        {
            await TypeAsync(input, Enumerable.Range(0, 4).Select(i => $"b{b:D2}-{i} {new string('f', 100)}"));
            var last = $"serial input: b{b:D2}-3";
            await UntilAsync(() => follow.Stdout.Contains(last, StringComparison.Ordinal), $"the follower never showed '{last}':\n{follow.Stdout}");
        }

        Assert.True(File.Exists(Console("follow", ".1")), "the log never rotated");
        var answers = System.Text.RegularExpressions.Regex.Matches(follow.Stdout, @"serial input: (b\d\d-\d)").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(Enumerable.Range(0, Batches).SelectMany(b => Enumerable.Range(0, 4).Select(i => $"b{b:D2}-{i}")), answers);
        var stop = await _root.RunAsync("stop", "follow");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        var followed = await follow.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.True(followed.ExitCode == 0, followed.ToString()); // the VM's end ends the follow
        await _root.RunAsync("rm", "follow");
    }
    [Fact]
    public async Task Kiln_logs_follow_restarts_a_keeper_sigkilled_while_it_follows_and_shows_what_the_guest_writes_after()
    {
        await _root.RunDetachedAsync("relay", "--console-limit", "4K");
        var (vmm, keeper) = await PidsAsync("relay");
        var input = Path.Combine(_root.Root, "relay", "console.in");
        await using var follow = _root.Start("logs", "relay", "--follow");
        await TypeAsync(input, ["before the kill"]);
        await UntilAsync(() => follow.Stdout.Contains("serial input: before the kill", StringComparison.Ordinal), $"the follower never showed the first line:\n{follow.Stdout}");

        await SigkillAsync(keeper);
        await TypeAsync(input, ["after the kill"]);

        // The follow itself starts a new keeper (no other kiln command runs), which drains the FIFO into the log.
        await UntilAsync(() => follow.Stdout.Contains("serial input: after the kill", StringComparison.Ordinal), $"the follower never showed the line typed after the kill:\n{follow.Stdout}");
        var (sameVmm, revived) = await PidsAsync("relay");
        Assert.Equal(vmm, sameVmm);
        Assert.NotEqual(keeper, revived);
        Assert.True(Alive(revived));

        var stop = await _root.RunAsync("stop", "relay");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        var followed = await follow.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.True(followed.ExitCode == 0, followed.ToString());
        Assert.False(Alive(revived), "the restarted keeper outlived its VMM's stop");
        await _root.RunAsync("rm", "relay");
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }
}
