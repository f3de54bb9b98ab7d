using Kiln.Api;
using Kiln.Tests.Reliability;
using Kiln.Tests.Support;
using Kiln.Vm;

namespace Kiln.Tests.Vm;

/// <summary>
/// A pause or resume that got no answer may have happened: the microVM says its state is in doubt and asks
/// Firecracker (GET /) before it next depends on it. The stand-in's FAKE_FC_SLOW_ANSWER carries the PATCH out and
/// holds its answer back, as a loaded host would, so the caller gives up on a change that did happen.
/// </summary>
public sealed class StateInDoubtTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Patch = "PATCH /vm";

    /// <summary>Cancels <paramref name="cts"/> once the VMM has logged that it received its <paramref name="nth"/> PATCH.</summary>
    private static Task CancelOnceReceivedAsync(MicrovmOptions options, CancellationTokenSource cts, int nth = 1) =>
        FaultHarness.InjectAsync(Fault.Cancel, options.LogPath!, FaultHarness.LogMarker(Patch), () => null, cts, nth);

    private static async Task<(Microvm Vm, MicrovmOptions Options)> BootAsync(TempRoot root, Dictionary<string, string> knobs)
    {
        var options = MicrovmFixture.Options(root, knobs);
        return (await Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct), options);
    }

    [Fact]
    public async Task A_pause_cancelled_before_its_late_answer_leaves_the_state_in_doubt_until_firecracker_says_paused()
    {
        using var root = new TempRoot();
        var (vm, options) = await BootAsync(root, new() { ["FAKE_FC_SLOW_ANSWER"] = $"{Patch}=3000" });
        await using var _ = vm;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var cancel = CancelOnceReceivedAsync(options, cts);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => vm.PauseAsync(cts.Token));
        await cancel;

        Assert.True(vm.IsStateInDoubt);
        Assert.Equal(MicrovmState.Running, vm.State); // what was known before the pause
        Assert.Equal(MicrovmState.Paused, await vm.RefreshStateAsync(Ct)); // GET / waits for the held answer
        Assert.False(vm.IsStateInDoubt);
        await vm.ResumeAsync(Ct);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
    }

    [Fact]
    public async Task The_next_operation_after_a_cancelled_resume_asks_firecracker_first_and_acts_on_the_real_state()
    {
        using var root = new TempRoot();
        var (vm, options) = await BootAsync(root, new() { ["FAKE_FC_SLOW_ANSWER"] = $"{Patch}=3000" });
        await using var _ = vm;
        await vm.PauseAsync(Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var cancel = CancelOnceReceivedAsync(options, cts, nth: 2); // the pause's PATCH was the first

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => vm.ResumeAsync(cts.Token));
        await cancel;

        // Taken as Paused, it is Running: a resume is refused with the real state, and a pause goes through.
        Assert.Equal(MicrovmState.Paused, vm.State);
        var refused = await Assert.ThrowsAsync<MicrovmStateException>(() => vm.ResumeAsync(Ct));
        Assert.Equal(MicrovmState.Running, refused.Actual);
        await vm.PauseAsync(Ct);
        Assert.Equal(InstanceState.Paused, (await vm.Client.DescribeInstanceAsync(Ct)).State);
    }

    [Fact]
    public async Task A_refused_pause_is_an_answer_and_leaves_no_doubt()
    {
        using var root = new TempRoot();
        var (vm, _) = await BootAsync(root, new() { ["FAKE_FC_FAIL"] = $"{Patch}=400:not now" });
        await using var _vm = vm;

        var e = await Assert.ThrowsAsync<FirecrackerApiException>(() => vm.PauseAsync(Ct));

        Assert.Equal("not now", e.FaultMessage);
        Assert.False(vm.IsStateInDoubt);
        Assert.Equal(MicrovmState.Running, vm.State);
    }

    [Fact]
    public async Task A_pause_whose_answer_timed_out_is_in_doubt_too_and_the_next_operation_finds_it_paused()
    {
        using var root = new TempRoot();
        var options = MicrovmFixture.Options(root, new() { ["FAKE_FC_SLOW_ANSWER"] = $"{Patch}#1=3000" }) with { RequestTimeout = TimeSpan.FromSeconds(2) };
        await using var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct);

        await Assert.ThrowsAsync<FirecrackerTimeoutException>(() => vm.PauseAsync(Ct));

        Assert.True(vm.IsStateInDoubt);
        // The resume asks first: GET / waits the second left of the held PATCH (within its own 2 s), says Paused, and
        // the resume goes through instead of being refused as "not Paused".
        await vm.ResumeAsync(Ct);
        Assert.False(vm.IsStateInDoubt);
        Assert.Equal(InstanceState.Running, (await vm.Client.DescribeInstanceAsync(Ct)).State);
    }
}
