// A record whose PID now belongs to another process (the kernel reused it after the VMM died): kiln ps, stop and rm
// treat the sandbox as Exited and never signal that process, whichever part of the identity still matches.
using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Kiln.Cli.Tests;

public sealed class PidReuseCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Theory]
    [InlineData("other start time", "stop")]
    [InlineData("other start time", "rm --force")]
    [InlineData("other executable", "stop")]
    [InlineData("other executable", "rm --force")]
    public async Task A_record_naming_a_reused_pid_is_exited_and_that_process_is_never_signalled(string forgery, string command)
    {
        const string name = "reused";
        await _root.RunDetachedAsync(name);
        var vmm = (await _root.PsAsync(name)).GetProperty("pid").GetInt32();
        Assert.Equal(0, NativeMethods.kill(vmm, NativeMethods.SIGKILL));
        await WaitUntilGoneAsync(vmm);
        using var bystander = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            // The record as a reused PID leaves it: the bystander's PID, with one half of its identity right.
            var statePath = Path.Combine(_root.Root, name, "state.json");
            var state = JsonNode.Parse(await File.ReadAllTextAsync(statePath, TestContext.Current.CancellationToken))!.AsObject();
            var startTime = StartTimeOf(bystander.Id);
            state["state"] = "Running";
            state["pid"] = bystander.Id;
            state["start_time_ticks"] = forgery == "other start time" ? startTime + 1 : startTime;
            state["executable_path"] = forgery == "other start time" ? new FileInfo($"/proc/{bystander.Id}/exe").LinkTarget : KilnSandboxRoot.Fake;
            await File.WriteAllTextAsync(statePath, state.ToJsonString(), TestContext.Current.CancellationToken);

            var ps = (await _root.PsAsync(name)).GetProperty("state").GetString();
            var result = await _root.RunAsync([.. command.Split(' '), name]);

            Assert.Equal("Exited", ps);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.False(bystander.HasExited, $"kiln {command} signalled the process that inherited the PID");
            Assert.Equal(startTime, StartTimeOf(bystander.Id));
        }
        finally
        {
            bystander.Kill();
            await bystander.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
    }

    private static ulong StartTimeOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return ulong.Parse(fields[19], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task WaitUntilGoneAsync(int pid)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (IsLive(pid))
        {
            Assert.True(DateTime.UtcNow < deadline, $"pid {pid} did not end");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    private static bool IsLive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
