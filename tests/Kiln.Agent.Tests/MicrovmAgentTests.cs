// The example on the microVM object: boot (the stand-in, whose guest runs the real agent), wait for the agent,
// exec and write a file — through Firecracker's hybrid-vsock path, without KVM.
using Kiln.Agent.Tests.Support;
using Kiln.Api;
using Kiln.Vm;

namespace Kiln.Agent.Tests;

public sealed class MicrovmAgentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static (MachineDescription, MicrovmOptions) Machine(TempDir dir, bool withVsock)
    {
        File.WriteAllText(dir["vmlinux"], "not a kernel");
        var description = new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = dir["vmlinux"], BootArgs = "console=ttyS0 reboot=k panic=1" },
            MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
            Devices = withVsock ? [new MachineVsock(new Vsock { GuestCid = 3, UdsPath = dir["v.sock"] })] : [],
        };
        var options = new MicrovmOptions
        {
            FirecrackerPath = Path.Combine(AppContext.BaseDirectory, "fake-firecracker"),
            SocketPath = dir["fc.sock"],
            ConsolePath = dir["console.log"],
            WorkingDirectory = dir.Path,
            Environment = new Dictionary<string, string> { ["FAKE_FC_AGENT"] = AgentProcess.BinaryPath },
            StopTimeout = TimeSpan.FromSeconds(5),
        };
        return (description, options);
    }

    [Fact]
    public async Task A_booted_microvm_execs_and_writes_files_through_its_agent()
    {
        using var dir = new TempDir();
        var (description, options) = Machine(dir, withVsock: true);
        await using var vm = await Microvm.BootAsync(description, options, Ct);

        await vm.WaitForAgentAsync(TimeSpan.FromSeconds(30), Ct);
        var result = await vm.ExecAsync(["sh", "-c", "echo hi; exit 3"], Ct);
        await vm.Files.WriteAsync(dir["input.txt"], "bytes"u8.ToArray(), Ct);

        Assert.Equal(("hi\n", 3), (result.Stdout, result.ExitCode));
        Assert.Equal("bytes", await File.ReadAllTextAsync(dir["input.txt"], Ct));
    }

    [Fact]
    public async Task A_microvm_without_vsock_has_no_way_to_its_agent()
    {
        using var dir = new TempDir();
        var (description, options) = Machine(dir, withVsock: false);
        await using var vm = await Microvm.BootAsync(description, options, Ct);

        Assert.Throws<MicrovmStateException>(() => vm.Agent);
    }
}
