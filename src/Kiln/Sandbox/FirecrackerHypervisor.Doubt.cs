// A request the caller gave up on (cancelled, or its answer timed out) after it was sent may have been carried out:
// Firecracker acts on what it has read whether or not its answer is read. The driver does not guess. A pause or
// resume leaves the microVM's state in doubt (Microvm.IsStateInDoubt); a hot-plug or hot-unplug leaves its pool slot
// in doubt, holding the file that may be attached so that no other hot-plug takes the slot. Both are recorded
// (state.json), so that a driver in another process knows too, and settled by asking Firecracker (GET /,
// GET /vm/config) before the next operation of any driver, which records the answer. A stop never asks: a VMM that
// stopped answering must still be stoppable.
using System.Collections.Immutable;
using Kiln.Vm;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    // Pool slots whose last hot-plug or hot-unplug got no answer. Changed under _gate, read without it (PoolSlots):
    // an immutable set swapped whole.
    private volatile ImmutableHashSet<int> _slotsInDoubt = [];

    /// <summary>
    /// A pause or resume; when it got no answer, the record says the state is in doubt (the state itself stays what
    /// was known), so that a driver in another process asks Firecracker too before trusting it.
    /// </summary>
    private async Task ChangeRunStateAsync(Microvm vm, Func<CancellationToken, Task> change, CancellationToken cancellationToken)
    {
        try
        {
            await change(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (vm.IsStateInDoubt)
        {
            await CleanupFailures.RunAsync(e, () => PersistAsync(CancellationToken.None)).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Records that slot <paramref name="index"/>'s swap got no answer; a failed write rides on <paramref name="failure"/>.</summary>
    private Task SlotInDoubtAsync(int index, Exception failure)
    {
        _slotsInDoubt = _slotsInDoubt.Add(index);
        return CleanupFailures.RunAsync(failure, () => PersistAsync(CancellationToken.None));
    }

    /// <summary>The slots of a record: their files, and which of them another driver left in doubt.</summary>
    private void AdoptSlots(IEnumerable<PoolSlot> slots)
    {
        foreach (var slot in slots)
        {
            if (slot.Index >= _pool!.Size)
                continue;
            _pool.Set(slot.Index, slot.HostPath);
            _slotsInDoubt = slot.InDoubt == true ? _slotsInDoubt.Add(slot.Index) : _slotsInDoubt.Remove(slot.Index);
        }
    }

    /// <summary>
    /// Before an operation checks the state or the pool: asks Firecracker what an unanswered pause, resume, hot-plug
    /// or hot-unplug (this driver's, or another's as the record says) did, and records the answer, which clears the
    /// record's doubt.
    /// </summary>
    private async Task SettleDoubtsAsync(CancellationToken cancellationToken)
    {
        if (_vm is not { } vm || vm.Process.HasExited || _state is not (SandboxState.Running or SandboxState.Paused))
            return;
        if (!vm.IsStateInDoubt && _slotsInDoubt.Count == 0)
            return;
        if (vm.IsStateInDoubt)
        {
            _state = await vm.RefreshStateAsync(cancellationToken).ConfigureAwait(false) switch
            {
                MicrovmState.Running => SandboxState.Running,
                MicrovmState.Paused => SandboxState.Paused,
                _ => _state, // it ended meanwhile: the exit watcher records that
            };
        }
        if (_slotsInDoubt.Count > 0)
        {
            var drives = (await vm.Client.GetExportVmConfigAsync(cancellationToken).ConfigureAwait(false)).Drives ?? [];
            foreach (var index in _slotsInDoubt.Order())
            {
                var slot = _pool!.Slots[index];
                var attached = drives.FirstOrDefault(d => d.DriveId == slot.DriveId)?.PathOnHost;
                // The placeholder back in place: the slot is free. Anything else: the file went in (or stayed).
                if (attached == vm.DrivePathForVmm(slot.DriveId, slot.PlaceholderPath))
                {
                    vm.WithdrawHotplug(slot.DriveId);
                    _pool.Set(index, null);
                }
                _slotsInDoubt = _slotsInDoubt.Remove(index);
                Log.SlotSettled(_logger, Id, slot.DriveId, _pool.Slots[index].HostPath ?? "its placeholder");
            }
        }
        await PersistAsync(cancellationToken).ConfigureAwait(false);
    }
}
