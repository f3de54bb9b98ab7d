// A pause or resume whose answer the caller gave up on (cancelled, or the answer timed out) while the VMM lives may
// have been carried out or not: Firecracker acts on a request it has read whether or not its answer is read. A guess
// either way leaves State, and every record made from it, wrong whenever the guess is, so the microVM says it does
// not know (IsStateInDoubt) and asks Firecracker (GET /) before the next operation that depends on it, or when its
// owner calls RefreshStateAsync.
using Kiln.Api;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    // Set by an interrupted pause or resume; cleared once GET / has answered. Read without the gate.
    private volatile bool _stateInDoubt;

    /// <summary>
    /// Whether a pause or resume was given up on after its request was sent (cancelled, or its answer timed out)
    /// while the VMM lives, so that Firecracker may or may not have carried it out. <see cref="State"/> then
    /// still says what was known before; the next operation, or <see cref="RefreshStateAsync"/>, asks Firecracker.
    /// </summary>
    public bool IsStateInDoubt => _stateInDoubt && !_vmm.HasExited;

    /// <summary>
    /// Asks Firecracker (GET /) whether the vCPUs run or are paused, and makes <see cref="State"/> say so; settles
    /// <see cref="IsStateInDoubt"/>. Only a Running or Paused microVM is asked; any other state is returned as it is.
    /// </summary>
    /// <returns>The state afterwards.</returns>
    public async Task<MicrovmState> RefreshStateAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (State is MicrovmState.Running or MicrovmState.Paused)
                await AskStateAsync(cancellationToken).ConfigureAwait(false);
            return State;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Another owner's pause or resume got no answer (its record says so): ask before trusting State.</summary>
    internal void MarkStateInDoubt() => _stateInDoubt = true;

    /// <summary>Called with the gate held, before an operation checks the state it needs.</summary>
    private async Task SettleStateInDoubtAsync(CancellationToken cancellationToken)
    {
        if (IsStateInDoubt && _state is MicrovmState.Running or MicrovmState.Paused)
            await AskStateAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task AskStateAsync(CancellationToken cancellationToken)
    {
        var before = _state;
        var info = await Client.DescribeInstanceAsync(cancellationToken).ConfigureAwait(false);
        _state = info.State switch
        {
            InstanceState.Running => MicrovmState.Running,
            InstanceState.Paused => MicrovmState.Paused,
            _ => _state,
        };
        var doubted = _stateInDoubt;
        _stateInDoubt = false;
        if (doubted)
            VmLog.StateSettled(_logger, VmId, before, _state);
    }

    /// <summary>
    /// Sends a request that moves the vCPUs to <paramref name="target"/>; when its answer is given up on while the VMM
    /// lives, the state is in doubt until Firecracker is asked.
    /// </summary>
    private async Task ChangeRunStateAsync(Func<CancellationToken, Task> request, MicrovmState target, CancellationToken cancellationToken)
    {
        try
        {
            await request(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (UnansweredRequest.MayHaveTakenEffect(e) && !_vmm.HasExited)
        {
            _stateInDoubt = true;
            throw;
        }
        _state = target;
        _stateInDoubt = false;
    }
}
