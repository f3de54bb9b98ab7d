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

        var sockets = Directory.GetFiles(Path.GetTempPath(), $"dotnet-diagnostic-{pid}-*");
        await driver.StopAsync(TimeSpan.Zero, Ct);

        Assert.Equal("0", Environment.GetEnvironmentVariable(Kiln.Testing.NoDiagnosticFiles.Variable));
        Assert.Empty(sockets);
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $"dotnet-diagnostic-{pid}-*"));
    }
}
