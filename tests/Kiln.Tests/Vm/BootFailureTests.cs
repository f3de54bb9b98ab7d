using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vmm;

namespace Kiln.Tests.Vm;

public sealed class BootFailureTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void AssertNothingLeft(TempRoot root)
    {
        Assert.Empty(ProcessScan.WithCommandLineContaining(root.Combine("fc.sock")));
        Assert.False(File.Exists(root.Combine("fc.sock")));
        Assert.False(File.Exists(root.Combine("console.log")));
        Assert.False(File.Exists(root.Combine("firecracker.log")));
        Assert.False(File.Exists(root.Combine("vm-config.json")));
    }

    [Fact]
    public async Task A_refused_api_step_fails_the_boot_with_its_step_and_fault_and_leaves_nothing()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_FAIL"] = "PUT /boot-source=400:Injected fault" };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() =>
            Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root, knobs), Ct));

        Assert.Equal("boot-source", e.Step);
        Assert.Equal("Injected fault", e.FaultMessage);
        Assert.Contains("Injected fault", e.OutputTail);
        AssertNothingLeft(root);
    }

    [Fact]
    public async Task A_vmm_that_exits_before_its_socket_fails_the_boot_at_api_ready_with_its_exit_code()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_EXIT_AT"] = "before-socket", ["FAKE_FC_EXIT_CODE"] = "42" };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() =>
            Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root, knobs), Ct));

        Assert.Equal("api-ready", e.Step);
        Assert.Equal(new VmmProcessState.Exited(42), Assert.IsType<VmmExitedException>(e.InnerException).Final);
        AssertNothingLeft(root);
    }

    [Fact]
    public async Task A_config_file_firecracker_refuses_fails_the_boot_with_its_reason_and_leaves_nothing()
    {
        using var root = new TempRoot();
        var description = MicrovmFixture.Description(root) with
        {
            BootSource = new Kiln.Api.BootSource { KernelImagePath = root.Combine("missing-vmlinux") },
        };
        var options = MicrovmFixture.Options(root) with { StartPath = MicrovmStartPath.ConfigFile };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.BootAsync(description, options, Ct));

        Assert.Equal("api-ready", e.Step);
        Assert.Equal(new VmmProcessState.Exited(1), Assert.IsType<VmmExitedException>(e.InnerException).Final);
        Assert.Contains("Failed to build MicroVM from Json", e.OutputTail);
        AssertNothingLeft(root);
    }

    [Fact]
    public async Task A_failing_preparation_step_fails_the_boot_before_anything_spawns()
    {
        using var root = new TempRoot();
        var options = MicrovmFixture.Options(root) with
        {
            Preparation = [new BootStep("placeholders", _ => throw new IOException("disk full"))],
        };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct));

        Assert.Equal("placeholders", e.Step);
        Assert.Equal("", e.OutputTail);
        AssertNothingLeft(root);
    }
}
