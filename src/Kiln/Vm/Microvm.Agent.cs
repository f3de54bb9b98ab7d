// Running code in the guest: the microVM's agent (kiln-agent in the guest, see docs/guest-agent.md), reached through
// the machine's vsock device on AgentClient.DefaultPort.
using Kiln.Agent;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    private AgentClient? _agent;

    // A restored machine has no description; its vsock socket is the one the restore gave Firecracker (vsock_override),
    // which is how a template's clones reach the agent that was listening when the template was made.
    private string? _restoredVsockPath;

    /// <summary>The guest agent of this microVM.</summary>
    /// <exception cref="MicrovmStateException">
    /// The machine has no vsock device (or was attached, or restored without a vsock override, so its socket is unknown).
    /// </exception>
    public AgentClient Agent => _agent ??= (Description?.Vsock?.UdsPath ?? _restoredVsockPath) is { } udsPath
        ? new AgentClient(HybridVsockConnector.Create(Path.GetFullPath(udsPath), AgentClient.DefaultPort, _options.TimeProvider), _options.TimeProvider)
        : throw new MicrovmStateException("reach the guest agent: the machine has no vsock device", State, MicrovmState.Running);

    /// <summary>Files in the guest, through its agent.</summary>
    public AgentFiles Files => Agent.Files;

    /// <summary>Runs <paramref name="argv"/> in the guest and collects its output; cancelling kills it in the guest.</summary>
    public Task<ExecResult> ExecAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken = default) =>
        Agent.ExecAsync(argv, cancellationToken);

    /// <inheritdoc cref="ExecAsync(IReadOnlyList{string}, CancellationToken)"/>
    public Task<ExecResult> ExecAsync(IReadOnlyList<string> argv, ExecOptions options, CancellationToken cancellationToken = default) =>
        Agent.ExecAsync(argv, options, cancellationToken);

    /// <summary>
    /// Readiness for exec: waits until the guest agent answers its health call, racing the VMM's exit.
    /// </summary>
    /// <exception cref="TimeoutException">The agent did not answer within <paramref name="timeout"/>.</exception>
    /// <exception cref="MicrovmStateException">The VMM exited first.</exception>
    public async Task<AgentHealth> WaitForAgentAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var agent = Agent;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ready = agent.WaitUntilReadyAsync(timeout, stop.Token);
        if (await Task.WhenAny(ready, _vmm.Exited).ConfigureAwait(false) != ready)
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await ready.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // We stopped it: the VMM is gone.
            }

            throw new MicrovmStateException("wait for the guest agent", MicrovmState.Exited, MicrovmState.Running);
        }

        return await ready.ConfigureAwait(false);
    }
}
