// The agent as PID 1, in a PID and mount namespace each test creates (`unshare` run directly, no shell): it mounts
// /proc, reaps the orphans re-parented to it, and powers the "machine" off — in a PID namespace, reboot(2) ends the
// namespace, and unshare reports its init killed by SIGINT (exit 130).
using System.Globalization;
using Kiln.Agent.Tests.Support;

namespace Kiln.Agent.Tests;

public sealed class InitTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<AgentProcess> StartAsPid1(TempDir dir)
    {
        Assert.SkipUnless(Environment.UserName == "root" && File.Exists("/usr/bin/unshare"), "PID namespaces need root and util-linux's unshare");
        return AgentProcess.StartAsync(dir["agent.sock"], "/usr/bin/unshare",
            ["--pid", "--fork", "--kill-child", "--mount", "--propagation", "private", "--", AgentProcess.BinaryPath, "--unix", dir["agent.sock"]]);
    }

    // (pid, ppid, state) of every process in the agent's namespace, read through the agent (its /proc is the namespace's).
    private static async Task<List<(int Pid, int PPid, string State)>> ProcessesAsync(AgentClient client)
    {
        var result = new List<(int, int, string)>();
        foreach (var entry in await client.Files.ListAsync("/proc", Ct))
        {
            if (!int.TryParse(Path.GetFileName(entry.Path), CultureInfo.InvariantCulture, out var pid))
                continue;
            string stat;
            try
            {
                stat = System.Text.Encoding.ASCII.GetString(await client.Files.ReadAllBytesAsync($"/proc/{pid}/stat", Ct));
            }
            catch (AgentOperationException)
            {
                continue; // gone meanwhile
            }

            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            result.Add((pid, int.Parse(fields[1], CultureInfo.InvariantCulture), fields[0]));
        }

        return result;
    }

    [Fact]
    public async Task As_PID_1_the_agent_mounts_proc_and_serves_from_a_child_it_started()
    {
        using var dir = new TempDir();
        await using var agent = await StartAsPid1(dir);

        var health = await agent.Client.HealthAsync(Ct);
        var init = await agent.Client.ExecAsync(["cat", "/proc/1/cmdline"], Ct);
        var processes = await ProcessesAsync(agent.Client);

        Assert.True(health.IsInit);
        Assert.Contains(processes, p => p.Pid == health.Pid && p.PPid == 1);
        Assert.Contains("kiln-agent", init.Stdout);
        Assert.DoesNotContain(processes, p => p.Pid == agent.Process.Id); // a fresh /proc: only the namespace's processes
    }

    [Fact]
    public async Task As_PID_1_the_agent_reaps_orphans_so_no_zombie_remains()
    {
        using var dir = new TempDir();
        await using var agent = await StartAsPid1(dir);
        var go = dir["go"];
        var health = await agent.Client.HealthAsync(Ct);

        // Three orphans: each inner shell's parent exits at once, so it is re-parented to PID 1 and waits for `go`.
        await agent.Client.ExecAsync(["sh", "-c", $"for i in 1 2 3; do sh -c 'until [ -e {go} ]; do sleep 0.02; done' & done; exit 0"], Ct);
        await Eventually.TrueAsync(async () => (await ProcessesAsync(agent.Client)).Count(p => p.PPid == 1 && p.Pid != health.Pid && p.State != "Z") == 3,
            TimeSpan.FromSeconds(30), "the three orphans were never seen re-parented to PID 1");
        await File.WriteAllTextAsync(go, "", Ct);

        await Eventually.TrueAsync(async () => (await ProcessesAsync(agent.Client)).All(p => p.PPid != 1 || p.Pid == health.Pid),
            TimeSpan.FromSeconds(30), "orphans of PID 1 remain (zombies are not reaped)");
    }

    [Fact]
    public async Task As_PID_1_the_agent_powers_off_on_request()
    {
        using var dir = new TempDir();
        await using var agent = await StartAsPid1(dir);

        await agent.Client.PowerOffAsync(Ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        await agent.Process.WaitForExitAsync(deadline.Token);

        Assert.Equal(130, agent.Process.ExitCode); // the namespace's init ended by reboot(POWER_OFF): SIGINT
        Assert.Contains("powering off", agent.Output);
    }

    [Fact]
    public async Task As_PID_1_the_agent_passes_over_boot_arguments_it_does_not_know_says_so_and_serves()
    {
        using var dir = new TempDir();
        Assert.SkipUnless(Environment.UserName == "root" && File.Exists("/usr/bin/unshare"), "PID namespaces need root and util-linux's unshare");
        // What a kernel hands init from "console=ttyS0 single --no-such-flag": the words it did not know itself.
        await using var agent = await AgentProcess.StartAsync(dir["agent.sock"], "/usr/bin/unshare",
            ["--pid", "--fork", "--kill-child", "--mount", "--propagation", "private", "--",
             AgentProcess.BinaryPath, "single", "--unix", dir["agent.sock"], "--no-such-flag"]);

        var health = await agent.Client.HealthAsync(Ct);

        Assert.True(health.IsInit);
        await Eventually.TrueAsync(() => agent.Output.Contains("ignoring unknown argument '--no-such-flag'", StringComparison.Ordinal),
            TimeSpan.FromSeconds(10), "the agent did not say it passed over the argument");
        Assert.Contains("ignoring unknown argument 'single'", agent.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Not_as_init_the_agent_refuses_an_argument_it_does_not_know()
    {
        using var dir = new TempDir();
        var info = new System.Diagnostics.ProcessStartInfo(AgentProcess.BinaryPath) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "--unix", dir["agent.sock"], "--exit-with-parent", "--no-such-flag" })
            info.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        _ = process.StandardOutput.ReadToEndAsync(Ct);

        await process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("Unknown option '--no-such-flag'", await stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(dir["agent.sock"]));
    }
}
