// How a microVM is stopped, as an ordered list of actions each with its own deadline (fctools' shape): the first
// action after which the VMM has ended is the outcome. Firecracker has no graceful "shutdown" call; a guest that
// boots with reboot=k exits the VMM (code 0) on Ctrl-Alt-Del, SIGTERM ends the VMM at once, SIGKILL always does.

namespace Kiln.Vm;

/// <summary>What one shutdown action does.</summary>
public enum ShutdownActionKind
{
    /// <summary>
    /// <c>PUT /actions SendCtrlAltDel</c>, then wait: the guest's init reboots, and with <c>reboot=k</c> the VMM
    /// exits 0. x86_64 only; a paused guest does not react.
    /// </summary>
    CtrlAltDel,

    /// <summary>SIGTERM to the VMM, then wait.</summary>
    Terminate,

    /// <summary>SIGKILL to the VMM, then wait.</summary>
    Kill,
}

/// <summary>One action of a <see cref="ShutdownPlan"/>.</summary>
/// <param name="Kind">What to do.</param>
/// <param name="Timeout">How long to wait for the VMM to end after doing it.</param>
public sealed record ShutdownAction(ShutdownActionKind Kind, TimeSpan Timeout);

/// <summary>An ordered list of shutdown actions; the next runs only if the VMM outlived the previous one's deadline.</summary>
public sealed record ShutdownPlan
{
    /// <summary>The deadline of the final SIGKILL in the built-in plans: the kernel reaps a killed process at once.</summary>
    public static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Creates a plan of <paramref name="actions"/>.</summary>
    public ShutdownPlan(params IReadOnlyList<ShutdownAction> actions)
    {
        ArgumentNullException.ThrowIfNull(actions);
        if (actions.Count == 0)
            throw new ArgumentException("A shutdown plan needs at least one action.", nameof(actions));
        foreach (var action in actions)
            ArgumentOutOfRangeException.ThrowIfLessThan(action.Timeout, TimeSpan.Zero, nameof(actions));
        Actions = actions;
    }

    /// <summary>The actions, in order.</summary>
    public IReadOnlyList<ShutdownAction> Actions { get; }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>: Kiln's default.</summary>
    public static ShutdownPlan TerminateThenKill(TimeSpan grace) =>
        new(new ShutdownAction(ShutdownActionKind.Terminate, grace), new ShutdownAction(ShutdownActionKind.Kill, KillTimeout));

    /// <summary>
    /// Ctrl-Alt-Del (the guest shuts down cleanly and, with <c>reboot=k</c>, the VMM exits 0), then SIGTERM after
    /// <paramref name="guestGrace"/>, then SIGKILL after <paramref name="terminateGrace"/>.
    /// </summary>
    public static ShutdownPlan Graceful(TimeSpan guestGrace, TimeSpan terminateGrace) =>
        new(new ShutdownAction(ShutdownActionKind.CtrlAltDel, guestGrace),
            new ShutdownAction(ShutdownActionKind.Terminate, terminateGrace),
            new ShutdownAction(ShutdownActionKind.Kill, KillTimeout));

    /// <summary>SIGKILL only.</summary>
    public static ShutdownPlan Kill() => new(new ShutdownAction(ShutdownActionKind.Kill, KillTimeout));
}

/// <summary>How a shutdown ended.</summary>
/// <param name="EndedBy">The action after which the VMM had ended, or null when it had ended before the plan ran.</param>
/// <param name="ExitStatus">How the VMM process ended.</param>
public sealed record ShutdownOutcome(ShutdownActionKind? EndedBy, Kiln.Vmm.VmmProcessState ExitStatus)
{
    /// <summary>Whether the VMM had already ended before any action.</summary>
    public bool WasAlreadyExited => EndedBy is null;
}
