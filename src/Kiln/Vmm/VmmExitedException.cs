namespace Kiln.Vmm;

/// <summary>The firecracker process ended while something was waiting for it (e.g. for its API to answer).</summary>
public sealed class VmmExitedException(VmmProcessState final, string waitingFor)
    : Exception($"firecracker ended ({Describe(final)}) while {waitingFor}")
{
    /// <summary>How it ended.</summary>
    public VmmProcessState Final { get; } = final;

    private static string Describe(VmmProcessState state) => state switch
    {
        VmmProcessState.Exited { Code: { } code } => $"exit code {code}",
        VmmProcessState.Exited => "exit code unknown",
        VmmProcessState.Crashed c => $"killed by signal {c.Signal}",
        _ => state.ToString(),
    };
}
