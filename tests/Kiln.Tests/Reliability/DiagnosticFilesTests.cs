using Kiln.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>The processes tests start leave no runtime diagnostic sockets in /tmp (tests/Shared/NoDiagnosticFiles.cs).</summary>
public sealed class DiagnosticFilesTests
{
    [Fact]
    public async Task A_vmm_a_test_starts_opens_no_diagnostic_socket_so_a_sigkill_leaves_none_in_tmp()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using var driver = new FirecrackerHypervisor();
        await driver.CreateAsync("diag", config, Ct);
        await driver.StartAsync(Ct);
        var pid = driver.Pid!.Value;
        // The runtime names its socket dotnet-diagnostic-PID-STARTTIME-socket (the start time in clock ticks since
        // boot, /proc/PID/stat's field 22). The start time is part of the name because an older process with the same
        // PID may have left its socket in /tmp: a glob on the PID alone failed CI on one such stale file.
        var startTime = Kiln.Host.ProcFs.TryGetStartTime(pid) ?? throw new InvalidOperationException($"the VMM {pid} is gone");
        var socket = Path.Combine(Path.GetTempPath(), $"dotnet-diagnostic-{pid}-{startTime}-socket");

        var existed = File.Exists(socket);
        await driver.StopAsync(TimeSpan.Zero, Ct);

        Assert.Equal("0", Environment.GetEnvironmentVariable(Kiln.Testing.NoDiagnosticFiles.Variable));
        Assert.False(existed, $"the VMM opened {socket}");
        Assert.False(File.Exists(socket), $"the killed VMM left {socket}");
    }
}
