// The host side end to end without KVM: fake-firecracker with FAKE_FC_AGENT runs the real agent behind its
// hybrid-vsock socket, and the client goes through CONNECT/OK exactly as with a real microVM.
using System.Diagnostics;
using System.Security.Cryptography;
using Kiln.Agent.Tests.Support;
using Kiln.Api;

namespace Kiln.Agent.Tests;

public sealed class StandInTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<Process> BootStandInAsync(TempDir dir)
    {
        File.WriteAllBytes(dir["vmlinux"], new byte[4096]);
        var info = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "fake-firecracker"))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.ArgumentList.Add("--api-sock");
        info.ArgumentList.Add(dir["api.sock"]);
        info.Environment["FAKE_FC_AGENT"] = AgentProcess.BinaryPath;
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await using var fc = new FirecrackerClient(dir["api.sock"]);
        // Until the API answers, not until the socket file appears: bind makes the file a moment before listen, and a
        // connect in between is refused (seen once in CI).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            Assert.False(process.HasExited, "the stand-in exited before its API answered");
            try
            {
                await fc.DescribeInstanceAsync(Ct);
                break;
            }
            catch (FirecrackerConnectionException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(10, Ct);
            }
        }
        await fc.PutMachineConfigurationAsync(new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 }, Ct);
        await fc.PutGuestBootSourceAsync(new BootSource { KernelImagePath = dir["vmlinux"], BootArgs = "console=ttyS0" }, Ct);
        await fc.PutGuestVsockAsync(new Vsock { GuestCid = 3, UdsPath = dir["v.sock"] }, Ct);
        await fc.StartInstanceAsync(Ct);
        return process;
    }

    private static async Task StopAsync(Process process)
    {
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync(CancellationToken.None);
        process.Dispose();
    }

    [Fact]
    public async Task Exec_and_files_work_through_the_stand_ins_hybrid_vsock()
    {
        using var dir = new TempDir();
        var fc = await BootStandInAsync(dir);
        try
        {
            var client = new AgentClient(Connectors.HybridVsock(dir["v.sock"], AgentClient.DefaultPort));
            await client.WaitUntilReadyAsync(TimeSpan.FromSeconds(30), Ct);
            var payload = RandomNumberGenerator.GetBytes(5 * 1024 * 1024);

            var result = await client.ExecAsync(["sh", "-c", "echo hi; exit 3"], Ct);
            await client.Files.WriteAsync(dir["in.bin"], payload, Ct);
            var sum = await client.ExecAsync(["sha256sum", dir["in.bin"]], Ct);

            Assert.Equal(("hi\n", 3), (result.Stdout, result.ExitCode));
            Assert.StartsWith(Convert.ToHexStringLower(SHA256.HashData(payload)), sum.Stdout);
        }
        finally
        {
            await StopAsync(fc);
        }
    }

    [Fact]
    public async Task The_stand_ins_agent_ends_with_the_stand_in()
    {
        using var dir = new TempDir();
        var fc = await BootStandInAsync(dir);
        var client = new AgentClient(Connectors.HybridVsock(dir["v.sock"], AgentClient.DefaultPort));
        var health = await client.WaitUntilReadyAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.True(Directory.Exists($"/proc/{health.Pid}"));

        fc.Kill(); // SIGKILL: no exit handler runs; only the agent's parent watch can end it
        await fc.WaitForExitAsync(Ct);
        fc.Dispose();

        await Eventually.TrueAsync(() => !Directory.Exists($"/proc/{health.Pid}") || File.ReadAllText($"/proc/{health.Pid}/stat").Contains(") Z ", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), $"the agent {health.Pid} outlived the stand-in");
    }
}
