// Exec on a template's clone: the template is made after the agent answered, so a clone restored from it answers exec
// through its own vsock socket (vsock_override) — on the stand-in (whose pretend guest forwards to a real kiln-agent)
// and, when given, under real Firecracker with a tiny image built by ImageBuilder.
using Kiln.Agent.Tests.Support;
using Kiln.Api;
using Kiln.Images;
using Kiln.Testing;
using Kiln.Vm;
using Kiln.Vm.Templates;

namespace Kiln.Agent.Tests;

public sealed class TemplateCloneExecTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static MicrovmOptions Options(TempDir dir, string name, string firecracker, IReadOnlyDictionary<string, string>? environment = null) => new()
    {
        FirecrackerPath = firecracker,
        SocketPath = dir[$"{name}.sock"],
        ConsolePath = dir[$"{name}.console"],
        WorkingDirectory = dir.Path,
        Id = name,
        Environment = environment ?? new Dictionary<string, string>(),
        StopTimeout = TimeSpan.FromSeconds(5),
    };

    private static TemplateCloneOptions CloneOptions(TempDir dir, int i, MicrovmOptions microvm) => new()
    {
        Microvm = microvm,
        Directory = dir[$"clone{i}"],
    };

    [Fact]
    public async Task A_clone_of_a_template_made_after_the_agent_answered_execs_through_its_own_vsock_on_the_stand_in()
    {
        using var dir = new TempDir();
        var fake = Path.Combine(AppContext.BaseDirectory, "fake-firecracker");
        var agentEnvironment = new Dictionary<string, string> { ["FAKE_FC_AGENT"] = AgentProcess.BinaryPath };
        File.WriteAllText(dir["vmlinux"], "not a kernel");
        var description = new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = dir["vmlinux"], BootArgs = "console=ttyS0 reboot=k panic=1" },
            MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
            Devices = [new MachineVsock(new Vsock { GuestCid = 3, UdsPath = dir["source-v.sock"] })],
        };
        await using var source = await Microvm.BootAsync(description, Options(dir, "source", fake, agentEnvironment), Ct);
        await source.WaitForAgentAsync(TimeSpan.FromSeconds(30), Ct);
        var template = await new TemplateStore(dir["templates"]).CreateAsync("agent", source, Ct);

        var clones = await template.StartClonesAsync(2, i => CloneOptions(dir, i, Options(dir, $"c{i}", fake, agentEnvironment)), cancellationToken: Ct);
        try
        {
            foreach (var (clone, i) in clones.Select((c, i) => (c, i)))
            {
                await clone.WaitForAgentAsync(TimeSpan.FromSeconds(30), Ct);
                var result = await clone.ExecAsync(["sh", "-c", $"echo clone {i}; exit {i + 3}"], Ct);
                Assert.Equal(($"clone {i}\n", i + 3), (result.Stdout, result.ExitCode));
            }
            // Each clone's agent answered on that clone's own socket, not the source's.
            Assert.All(clones.Select((_, i) => CloneOptions(dir, i, Options(dir, $"c{i}", fake)).VsockPath), path => Assert.True(File.Exists(path), path));
        }
        finally
        {
            foreach (var clone in clones)
                await clone.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_restored_microvm_without_a_vsock_override_says_it_cannot_reach_its_agent()
    {
        using var dir = new TempDir();
        var fake = Path.Combine(AppContext.BaseDirectory, "fake-firecracker");
        File.WriteAllText(dir["vmlinux"], "not a kernel");
        var description = new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = dir["vmlinux"] },
            MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 128 },
        };
        await using var source = await Microvm.BootAsync(description, Options(dir, "source", fake), Ct);
        await source.PauseAsync(Ct);
        await source.CreateSnapshotAsync(new SnapshotCreateParams { SnapshotPath = dir["state"], MemFilePath = dir["mem"] }, Ct);
        var snapshot = new SnapshotFiles(dir["state"], dir["mem"]);
        await source.StopAsync(ShutdownPlan.Kill(), Ct);

        await using var restored = await Microvm.RestoreAsync(snapshot, Options(dir, "restored", fake), cancellationToken: Ct);

        Assert.Throws<MicrovmStateException>(() => restored.Agent);
    }

    [Fact]
    public async Task A_clone_of_a_tiny_image_guest_answers_exec_under_real_Firecracker()
    {
        var firecracker = RealFirecracker.Binary(out var reason);
        Assert.SkipWhen(firecracker is null, reason);
        Assert.SkipUnless(RealFirecracker.KvmOpens(out reason), reason);
        var kernel = Environment.GetEnvironmentVariable("KILN_TEST_KERNEL");
        Assert.SkipWhen(kernel is null or "" || !File.Exists(kernel), "no guest kernel: set KILN_TEST_KERNEL (virtio-mmio, virtio-blk, ext4 and vsock built in)");
        var agent = NativeAgent.Require();
        Assert.SkipUnless(Environment.UserName == "root", "a clone's writable root drive is bound in a private mount namespace: needs root");
        RealFirecracker.RecordRun();
        using var dir = new TempDir();
        var image = dir["tiny.ext4"];
        await ImageBuilder.BuildAsync(new ImageSpec { OutputPath = image, AgentPath = agent, Base = ImageBase.Tiny }, cancellationToken: Ct);
        var description = new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = kernel!, BootArgs = "console=ttyS0 reboot=k panic=1 pci=off" },
            MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 256 },
            Devices =
            [
                new MachineDrive(new Drive { DriveId = "rootfs", PathOnHost = image, IsRootDevice = true, IsReadOnly = false }),
                new MachineVsock(new Vsock { GuestCid = 3, UdsPath = dir["source-v.sock"] }),
            ],
        };
        await using var source = await Microvm.BootAsync(description, Options(dir, "source", firecracker!), Ct);
        await source.WaitForAgentAsync(RealFirecracker.BootTimeout(), Ct);
        var template = await new TemplateStore(dir["templates"]).CreateAsync("agent", source, Ct);
        await source.StopAsync(ShutdownPlan.Kill(), Ct);

        await using var clone = await template.StartCloneAsync(CloneOptions(dir, 0, Options(dir, "c0", firecracker!)), Ct);
        await clone.WaitForAgentAsync(TimeSpan.FromSeconds(30), Ct);
        var result = await clone.ExecAsync(["sh", "-c", "echo from the clone; exit 3"], Ct);

        Assert.Equal(("from the clone\n", 3), (result.Stdout, result.ExitCode));
    }
}
