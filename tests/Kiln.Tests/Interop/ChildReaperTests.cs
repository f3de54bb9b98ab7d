using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Interop;

// The shared reaper replaced a thread per child: each child must still get its own exit status, 0 included (the
// status a still-running WNOHANG wait also returns), and many children at once must not need a thread each.
public sealed class ChildReaperTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Children_started_together_each_get_their_own_exit_status_without_a_thread_each()
    {
        using var root = new TempRoot();
        const int count = 24;
        var script = root.Script("vmm", "read -r _; exit \"$CODE\"");
        var threadsBefore = WaitingThreads();
        var launched = new List<VmmProcess>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                launched.Add(await VmmProcess.LaunchAsync(new VmmLaunchOptions
                {
                    ExecutablePath = script,
                    Arguments = new VmmArguments(root.Combine($"api{i}.sock")),
                    OutputPath = root.Combine($"console{i}.log"),
                    Environment = new Dictionary<string, string> { ["CODE"] = (i % 4).ToString(System.Globalization.CultureInfo.InvariantCulture) },
                }, Ct));
            }
            // All run now, each blocked reading its stdin.
            var threadsWhileRunning = WaitingThreads();
            Assert.True(threadsWhileRunning - threadsBefore < count / 2,
                $"{count} running children took {threadsWhileRunning - threadsBefore} more long-running threads");

            foreach (var vmm in launched)
            {
                await vmm.SerialInput!.WriteAsync("go\n"u8.ToArray(), Ct);
                await vmm.SerialInput.FlushAsync(Ct);
            }
            var finals = await Task.WhenAll(launched.Select(v => v.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct)));

            for (var i = 0; i < count; i++)
                Assert.Equal(new VmmProcessState.Exited(i % 4), finals[i]);
        }
        finally
        {
            foreach (var vmm in launched)
                await vmm.DisposeAsync();
        }
    }

    [Fact]
    public async Task Re_attached_processes_that_are_not_our_children_are_watched_without_a_thread_each()
    {
        using var root = new TempRoot();
        const int count = 24;
        var launched = new List<VmmProcess>();
        var attached = new List<VmmProcess>();
        try
        {
            // Detached (own session), then re-attached by identity: the way a host re-adopts the VMMs it left running.
            for (var i = 0; i < count; i++)
            {
                launched.Add(await VmmProcess.LaunchAsync(new VmmLaunchOptions
                {
                    ExecutablePath = root.Script($"vmm{i}", "exec sleep 1000"),
                    Arguments = new VmmArguments(root.Combine($"api{i}.sock")),
                    OutputPath = root.Combine($"console{i}.log"),
                    Detached = true,
                }, Ct));
            }
            var identities = new List<Kiln.Host.ProcessIdentity>();
            foreach (var vmm in launched)
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                Kiln.Host.ProcessIdentity? identity;
                while ((identity = Kiln.Host.ProcFs.TryGetIdentity(vmm.Pid)) is not { ExecutablePath: "/usr/bin/sleep" or "/bin/sleep" })
                {
                    Assert.True(DateTime.UtcNow < deadline, "the child never became sleep");
                    await Task.Delay(10, Ct);
                }
                identities.Add(identity);
            }
            var threadsBefore = WaitingThreads();

            foreach (var identity in identities)
                attached.Add(VmmProcess.TryAttach(identity, root.Combine("attached.log")) ?? throw new Xunit.Sdk.XunitException("not attached"));
            _ = attached.Select(a => a.Exited).ToList(); // every exit watch started
            var threadsWhileWatching = WaitingThreads();

            Assert.True(threadsWhileWatching - threadsBefore < count / 2,
                $"{count} re-attached processes took {threadsWhileWatching - threadsBefore} more long-running threads");
            foreach (var vmm in launched)
                await vmm.KillAsync(Ct);
            var finals = await Task.WhenAll(attached.Select(a => a.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct)));
            Assert.All(finals, f => Assert.Equal(new VmmProcessState.Exited(null), f));
        }
        finally
        {
            foreach (var vmm in attached.Concat(launched))
                await vmm.DisposeAsync();
        }
    }

    /// <summary>
    /// Threads of the kind a blocking wait runs on (.NET names a LongRunning task's thread ".NET Long Running Task"),
    /// counted by name: the thread pool, which tests running in parallel grow, does not count.
    /// </summary>
    private static int WaitingThreads() => Directory.GetDirectories("/proc/self/task").Count(task =>
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).StartsWith(".NET Long Runn", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false; // the thread ended meanwhile
        }
    });

    [Fact]
    public async Task A_child_killed_by_a_signal_is_reported_crashed_by_that_signal()
    {
        using var root = new TempRoot();
        var script = root.Script("vmm", "read -r _");
        await using var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
        {
            ExecutablePath = script,
            Arguments = new VmmArguments(root.Combine("api.sock")),
            OutputPath = root.Combine("console.log"),
        }, Ct);

        Assert.True(vmm.TrySignal(9));

        Assert.Equal(new VmmProcessState.Crashed(9), await vmm.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct));
    }
}
