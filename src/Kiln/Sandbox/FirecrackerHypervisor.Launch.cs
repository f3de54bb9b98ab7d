// What a boot and a restore of a sandbox share around the VMM's launch: the sandbox network made first (after a sweep
// of dead owners' networks), and the bookkeeping the moment the VMM exists (the network handed to it, the record).
using Kiln.Host.Network;
using Kiln.Vm;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>The preparation step that sets up <paramref name="spec"/> as this sandbox's network.</summary>
    private BootStep NetworkStep(SandboxNetworks networks, SandboxNetworkSpec spec) => new("network", async ct =>
    {
        // Networks whose owner was killed (a Kiln or a VMM) go first: one of them may hold this sandbox's names.
        await networks.SweepAsync(ct).ConfigureAwait(false);
        await networks.SetUpAsync(Id, spec, ct).ConfigureAwait(false);
    });

    /// <summary><see cref="MicrovmOptions()"/> with the launch bookkeeping every sandbox start (boot or restore) needs.</summary>
    private MicrovmOptions LaunchOptions(SandboxNetworks networks, SandboxNetworkInfo? network) => MicrovmOptions() with
    {
        NetworkNamespacePath = network?.NamespacePath,
        Spawning = RecordSpawningAsync,
        Spawned = async (vm, ct) =>
        {
            _vm = vm;
            _spawningSince = null;
            // From now on the network lives as long as the VMM: a sweep removes it once the VMM is gone.
            if (network is not null)
                await networks.TransferOwnershipAsync(Id, vm.Pid, ct).ConfigureAwait(false);
            StartedAt = _time.GetUtcNow();
            Log.VmmSpawned(_logger, Id, vm.Pid, _ownership);
            // Recorded at once, so a driver in another process can find (and stop) it even if this one dies now.
            await PersistAsync(ct).ConfigureAwait(false);
        },
    };
}
