using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vmm;

namespace Kiln.Tests.Vm;

public sealed class ShutdownPlanTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Ctrl_alt_del_ends_a_reboot_k_guest_and_firecracker_exits_0()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_REBOOT_DELAY_MS"] = "50" };
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root, knobs), Ct);

        var outcome = await vm.StopAsync(ShutdownPlan.Graceful(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5)), Ct);

        Assert.Equal(ShutdownActionKind.CtrlAltDel, outcome.EndedBy);
        Assert.Equal(new VmmProcessState.Exited(0), outcome.ExitStatus);
        Assert.Equal(MicrovmState.Exited, vm.State);
        Assert.Contains("reboot: Restarting system", File.ReadAllText(root.Combine("console.log")));
    }

    [Fact]
    public async Task A_guest_without_reboot_k_outlives_ctrl_alt_del_and_sigterm_ends_it()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_REBOOT_DELAY_MS"] = "10" };
        var description = MicrovmFixture.Description(root, bootArgs: "console=ttyS0 panic=1");
        await using var vm = await Microvm.BootAsync(description, MicrovmFixture.Options(root, knobs), Ct);

        var outcome = await vm.StopAsync(ShutdownPlan.Graceful(TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(5)), Ct);

        Assert.Equal(ShutdownActionKind.Terminate, outcome.EndedBy);
        Assert.Equal(new VmmProcessState.Crashed(15), outcome.ExitStatus);
    }

    [Fact]
    public async Task A_vmm_that_ignores_sigterm_is_ended_by_the_sigkill_fallback()
    {
        using var root = new TempRoot();
        var knobs = new Dictionary<string, string> { ["FAKE_FC_IGNORE_SIGTERM"] = "1" };
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root, knobs), Ct);

        var outcome = await vm.StopAsync(ShutdownPlan.TerminateThenKill(TimeSpan.FromMilliseconds(200)), Ct);

        Assert.Equal(ShutdownActionKind.Kill, outcome.EndedBy);
        Assert.Equal(new VmmProcessState.Crashed(9), outcome.ExitStatus);
        Assert.Empty(ProcessScan.WithCommandLineContaining(root.Combine("fc.sock")));
    }

    [Fact]
    public async Task The_default_plan_ends_the_vmm_with_sigterm()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);

        var outcome = await vm.StopAsync(cancellationToken: Ct);

        Assert.Equal(ShutdownActionKind.Terminate, outcome.EndedBy);
        Assert.Equal(new VmmProcessState.Crashed(15), outcome.ExitStatus);
    }

    [Fact]
    public async Task Stopping_a_microvm_whose_vmm_already_ended_reports_that_no_action_ended_it()
    {
        using var root = new TempRoot();
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), Ct);
        await vm.StopAsync(ShutdownPlan.Kill(), Ct);

        var outcome = await vm.StopAsync(cancellationToken: Ct);

        Assert.True(outcome.WasAlreadyExited);
        Assert.Equal(new VmmProcessState.Crashed(9), outcome.ExitStatus);
    }

    [Fact]
    public void A_plan_needs_at_least_one_action() =>
        Assert.Throws<ArgumentException>(() => new ShutdownPlan());
}
