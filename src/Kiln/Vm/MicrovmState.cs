namespace Kiln.Vm;

/// <summary>
/// A microVM's lifecycle: Firecracker's own states (Not started is <see cref="Starting"/> here, then Running and
/// Paused) plus Kiln's around them.
/// </summary>
public enum MicrovmState
{
    /// <summary>The VMM is being spawned and configured; the guest has not run yet.</summary>
    Starting,

    /// <summary>The guest runs.</summary>
    Running,

    /// <summary>The vCPUs are stopped (PATCH /vm Paused).</summary>
    Paused,

    /// <summary>A shutdown plan is running.</summary>
    Stopping,

    /// <summary>The VMM process has ended; <see cref="Microvm.ExitStatus"/> says how.</summary>
    Exited,
}
