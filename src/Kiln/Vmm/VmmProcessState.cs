namespace Kiln.Vmm;

/// <summary>Where a firecracker process is in its life (fctools' process state, as a closed hierarchy).</summary>
public abstract record VmmProcessState
{
    private VmmProcessState() { }

    /// <summary>Not launched yet.</summary>
    public sealed record AwaitingStart : VmmProcessState;

    /// <summary>Running with this PID.</summary>
    public sealed record Started(int Pid) : VmmProcessState;

    /// <summary>
    /// Ended by exiting. <paramref name="Code"/> is null when it cannot be known: the process was not our child
    /// (a re-attached VMM), so no one told us its status.
    /// </summary>
    public sealed record Exited(int? Code) : VmmProcessState;

    /// <summary>Ended by a signal (SIGKILL after a stop timeout is 9, Firecracker's own death on SIGTERM is 15).</summary>
    public sealed record Crashed(int Signal) : VmmProcessState;

    /// <summary>Whether the process has ended.</summary>
    public bool HasEnded => this is Exited or Crashed;

    /// <summary>
    /// Maps .NET's <see cref="System.Diagnostics.Process.ExitCode"/> to a state. .NET reports death by signal N as
    /// 128 + N, indistinguishable from exit(128 + N); Firecracker's own exit codes are 0–2 and 148–157 (FcExitCode),
    /// so codes 129–147 are read as signals and everything else as an exit code.
    /// </summary>
    public static VmmProcessState FromExitCode(int code) =>
        code is > 128 and < 148 ? new Crashed(code - 128) : new Exited(code);
}

