using System.Diagnostics;
using Kiln.Host;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Reliability;

/// <summary>
/// After an owner dies, its record may name a PID the kernel has since given to another process. Whatever part of the
/// identity still matches, a process whose start time and executable are not both the recorded ones is never signalled.
/// </summary>
public sealed class OwnerCrashTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public enum Forgery
    {
        /// <summary>The bystander's PID and real start time; the recorded executable is firecracker's.</summary>
        SameStartTimeOtherExecutable,

        /// <summary>The bystander's PID and real executable; another start time.</summary>
        SameExecutableOtherStartTime,

        /// <summary>The bystander's PID, with no start time or executable recorded at all.</summary>
        NoIdentity,
    }

    [Theory]
    [InlineData(Forgery.SameStartTimeOtherExecutable)]
    [InlineData(Forgery.SameExecutableOtherStartTime)]
    [InlineData(Forgery.NoIdentity)]
    public async Task A_reused_pid_is_never_signalled_by_stop_or_force_removal(Forgery forgery)
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using (var driver = new FirecrackerHypervisor())
            await driver.CreateAsync("reused", config, Ct);
        using var bystander = Process.Start(new ProcessStartInfo("sleep", "120") { UseShellExecute = false })!;
        var identity = ProcFs.TryGetIdentity(bystander.Id)!;
        var statePath = Path.Combine(config.RootDirectory, "reused", "state.json");
        var state = (await SandboxStateFile.TryReadAsync(statePath, Ct))!;
        state = forgery switch
        {
            Forgery.SameStartTimeOtherExecutable => state with { StartTimeTicks = identity.StartTimeTicks, ExecutablePath = config.FirecrackerPath },
            Forgery.SameExecutableOtherStartTime => state with { StartTimeTicks = identity.StartTimeTicks + 1, ExecutablePath = identity.ExecutablePath },
            _ => state with { StartTimeTicks = null, ExecutablePath = null },
        };
        await (state with { State = SandboxState.Running, Pid = bystander.Id }).WriteAsync(statePath, Ct);
        try
        {
            await using var reopened = new FirecrackerHypervisor();
            await reopened.CreateAsync("reused", config, Ct);
            await reopened.StopAsync(TimeSpan.Zero, Ct);

            Assert.NotEqual(SandboxState.Running, reopened.State);
            Assert.False(bystander.HasExited, "the bystander that inherited the PID was signalled");
            Assert.Equal(identity.StartTimeTicks, ProcFs.TryGetIdentity(bystander.Id)?.StartTimeTicks);
        }
        finally
        {
            bystander.Kill();
        }
    }
}
