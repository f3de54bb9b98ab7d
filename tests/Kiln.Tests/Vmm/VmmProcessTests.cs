using Kiln.Host;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Vmm;

// A shell script stands in for firecracker here: the process layer does not care what the binary is.
public sealed class VmmProcessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static VmmLaunchOptions Options(TempRoot root, string script, bool detached = false) => new()
    {
        ExecutablePath = script,
        Arguments = new VmmArguments(root.Combine("api.sock")).WithId("t"),
        OutputPath = root.Combine("console.log"),
        Detached = detached,
    };

    [Fact]
    public async Task An_owned_process_has_its_output_in_the_console_file_and_the_tail_and_its_exit_code()
    {
        using var root = new TempRoot();
        var script = root.Script("vmm", "echo \"args: $*\"; echo oops >&2; exit 3");
        await using var vmm = await VmmProcess.LaunchAsync(Options(root, script), Ct);

        var final = await vmm.Exited.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(new VmmProcessState.Exited(3), final);
        Assert.Equal(final, vmm.State);
        var console = await File.ReadAllTextAsync(root.Combine("console.log"), Ct);
        Assert.Contains($"args: --api-sock {root.Combine("api.sock")} --id t", console);
        Assert.Contains("oops", console);
        Assert.Contains("oops", vmm.ReadOutputTail());
    }

    [Fact]
    public async Task A_sigterm_through_the_pidfd_ends_a_process_that_honours_it()
    {
        using var root = new TempRoot();
        var script = root.Script("vmm", "exec sleep 1000");
        await using var vmm = await VmmProcess.LaunchAsync(Options(root, script), Ct);

        Assert.True(vmm.TrySignal(15));
        await vmm.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(new VmmProcessState.Crashed(15), vmm.State);
        Assert.Null(ProcFs.TryGetIdentity(vmm.Pid) is { } live && live.StartTimeTicks == vmm.Identity.StartTimeTicks ? live : null);
    }

    [Fact]
    public async Task Kill_ends_a_process_that_ignores_sigterm()
    {
        using var root = new TempRoot();
        // An ignored signal stays ignored across exec.
        var script = root.Script("vmm", "trap '' TERM; echo ready; exec sleep 1000");
        await using var vmm = await VmmProcess.LaunchAsync(Options(root, script), Ct);
        await WaitForFileTextAsync(root.Combine("console.log"), "ready");

        await vmm.KillAsync(Ct);

        Assert.Equal(new VmmProcessState.Crashed(9), vmm.State);
    }

    [Fact]
    public async Task An_ended_process_is_signalled_no_more()
    {
        using var root = new TempRoot();
        await using var vmm = await VmmProcess.LaunchAsync(Options(root, root.Script("vmm", "exit 0")), Ct);
        await vmm.Exited.WaitAsync(Ct);

        Assert.False(vmm.TrySignal(15));
        await vmm.KillAsync(Ct); // returns at once: nothing to signal
    }

    [Fact]
    public async Task An_owned_process_runs_in_its_own_process_group_of_our_session_so_a_terminals_ctrl_c_reaches_only_the_owner()
    {
        using var root = new TempRoot();
        var script = root.Script("vmm", "echo owned-hello; exec sleep 1000");
        await using var vmm = await VmmProcess.LaunchAsync(Options(root, script), Ct);
        try
        {
            await WaitForFileTextAsync(root.Combine("console.log"), "owned-hello");
            var stat = await File.ReadAllTextAsync($"/proc/{vmm.Pid}/stat", Ct);
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ours = await File.ReadAllTextAsync("/proc/self/stat", Ct);
            var ourFields = ours[(ours.LastIndexOf(')') + 2)..].Split(' ');
            Assert.Equal(vmm.Pid.ToString(), fields[2]); // field 5: process group
            // field 6: our session, not a new one (a new session is a new scheduler autogroup)
            Assert.Equal(ourFields[3], fields[3]);
            Assert.Equal(Environment.ProcessId.ToString(), fields[1]); // field 4: still this process's child
            Assert.Equal(Path.GetFullPath(script), vmm.Identity.ExecutablePath);
        }
        finally
        {
            await vmm.KillAsync(Ct);
        }
    }

    [Fact]
    public async Task A_detached_process_runs_in_its_own_session_and_writes_straight_into_the_file()
    {
        using var root = new TempRoot();
        var script = root.Script("vmm", "echo detached-hello; exec sleep 1000");
        await using var vmm = await VmmProcess.LaunchAsync(Options(root, script, detached: true), Ct);
        try
        {
            await WaitForFileTextAsync(root.Combine("console.log"), "detached-hello");
            var stat = await File.ReadAllTextAsync($"/proc/{vmm.Pid}/stat", Ct);
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            Assert.Equal(vmm.Pid.ToString(), fields[3]); // field 6: session id
            var stdout = new FileInfo($"/proc/{vmm.Pid}/fd/1").LinkTarget;
            Assert.Equal(root.Combine("console.log"), stdout);
            Assert.Equal(Path.GetFullPath(script), vmm.Identity.ExecutablePath);
        }
        finally
        {
            if (vmm.TrySignal(15))
                await vmm.Exited.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        }
        Assert.Equal(new VmmProcessState.Crashed(15), vmm.State);
    }

    [Fact]
    public async Task A_process_can_be_reattached_by_identity_and_stopped_through_the_new_handle()
    {
        using var root = new TempRoot();
        await using var launched = await VmmProcess.LaunchAsync(Options(root, root.Script("vmm", "exec sleep 1000"), detached: true), Ct);
        await WaitUntilAsync(() => ProcFs.TryGetExecutable(launched.Pid) == "/usr/bin/sleep" || ProcFs.TryGetExecutable(launched.Pid) == "/bin/sleep");
        var identity = ProcFs.TryGetIdentity(launched.Pid)!;

        Assert.Null(VmmProcess.TryAttach(identity with { StartTimeTicks = identity.StartTimeTicks + 1 }, root.Combine("console.log")));
        await using var attached = VmmProcess.TryAttach(identity, root.Combine("console.log"));
        Assert.NotNull(attached);
        Assert.False(attached.IsChild);

        Assert.True(attached.TrySignal(15));
        await attached.Exited.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(new VmmProcessState.Exited(null), attached.State);
        Assert.Equal(new VmmProcessState.Crashed(15), await launched.Exited.WaitAsync(Ct));
    }

    [Fact]
    public async Task Disposing_an_owned_process_kills_it()
    {
        using var root = new TempRoot();
        var vmm = await VmmProcess.LaunchAsync(Options(root, root.Script("vmm", "trap '' TERM; echo ready; exec sleep 1000")), Ct);
        await WaitForFileTextAsync(root.Combine("console.log"), "ready");

        await vmm.DisposeAsync();

        Assert.Equal(new VmmProcessState.Crashed(9), vmm.State);
    }

    [Fact]
    public async Task A_missing_binary_fails_to_launch_with_a_typed_error()
    {
        using var root = new TempRoot();
        var e = await Assert.ThrowsAsync<VmmLaunchException>(() => VmmProcess.LaunchAsync(Options(root, root.Combine("nope")), Ct));
        Assert.Equal(root.Combine("nope"), e.Executable);
    }

    private static async Task WaitForFileTextAsync(string path, string text) =>
        await WaitUntilAsync(() => File.Exists(path) && File.ReadAllText(path).Contains(text, StringComparison.Ordinal));

    // Test-side observation of another process's progress: bounded, and fails the test rather than passing.
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(5, Ct);
        }
    }
}

public sealed class OwnerThreadTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // PR_SET_PDEATHSIG fires when the forking *thread* exits. An owned VMM launched from a short-lived thread must
    // survive that thread: the fork happens on Kiln's long-lived owner thread instead.
    [Fact]
    public async Task An_owned_process_survives_the_exit_of_the_thread_that_asked_for_it()
    {
        using var root = new TempRoot();
        // By the time the script echoes, setpriv has set the death signal: a thread exiting after that would kill it
        // (measured: a setpriv child forked from a thread that then ends dies by SIGKILL ~10 ms later).
        var script = root.Script("vmm", "echo ready; exec sleep 1000");
        VmmProcess? vmm = null;
        var thread = new Thread(() =>
        {
            vmm = VmmProcess.LaunchAsync(new VmmLaunchOptions
            {
                ExecutablePath = script,
                Arguments = new VmmArguments(root.Combine("api.sock")),
                OutputPath = root.Combine("console.log"),
            }, Ct).GetAwaiter().GetResult();
            Eventually.FileContainsAsync(root.Combine("console.log"), "ready", TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        });
        thread.Start();
        thread.Join();
        await using var _ = vmm!;

        // The death signal would follow the thread's exit within milliseconds; a second is ample for it to show.
        var ended = await Task.WhenAny(vmm!.Exited, Task.Delay(TimeSpan.FromSeconds(1), Ct));

        Assert.NotSame(vmm.Exited, ended);
        Assert.IsType<VmmProcessState.Started>(vmm.State);
    }
}
