using System.Diagnostics;

namespace Kiln.Tests.Reliability;

/// <summary>
/// Runs an action, synchronously, as one of Kiln's trace spans begins (a boot or restore step:
/// <c>kiln.sandbox.start.machine-config</c>) — only within the asynchronous flow that armed it, so tests running in
/// parallel in this process never see each other's hooks. The step's own work (its request to Firecracker) starts
/// only after the action returns, which is what lets a test SIGKILL a real Firecracker "at" a step without the
/// stand-in's FAKE_FC_HANG.
/// </summary>
internal static class StepHook
{
    private static readonly AsyncLocal<Action<string>?> Current = new();

    private static readonly ActivityListener Listener = CreateListener();

    /// <summary>Arms <paramref name="onSpanStart"/> (given the span's name) for the calls made after it in this flow.</summary>
    public static void Arm(Action<string> onSpanStart)
    {
        GC.KeepAlive(Listener);
        Current.Value = onSpanStart;
    }

    private static ActivityListener CreateListener()
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Kiln",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = activity => Current.Value?.Invoke(activity.OperationName),
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }
}
