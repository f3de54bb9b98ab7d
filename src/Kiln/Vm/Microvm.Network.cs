// After boot: the metadata document (MMDS, System.Text.Json nodes) and the rate limits of interfaces and drives.
// Limits are checked (RateLimiterRules) before they reach Firecracker, which would otherwise turn an unusable bucket
// into no limit at all without a word.
using System.Text.Json.Nodes;
using Kiln.Api;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>Replaces the metadata document the guest reads from MMDS (PUT /mmds).</summary>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public Task PutMetadataAsync(JsonObject document, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(document);
        return LockedAsync("put the metadata", "metadata.put", [MicrovmState.Running, MicrovmState.Paused], ct => Client.PutMmdsAsync(document, ct), cancellationToken);
    }

    /// <summary>Merges <paramref name="patch"/> into the metadata document (PATCH /mmds, RFC 7396: null removes a key).</summary>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public Task PatchMetadataAsync(JsonObject patch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(patch);
        return LockedAsync("patch the metadata", "metadata.patch", [MicrovmState.Running, MicrovmState.Paused], ct => Client.PatchMmdsAsync(patch, ct), cancellationToken);
    }

    /// <summary>The metadata document as Firecracker holds it (GET /mmds).</summary>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public async Task<JsonNode> GetMetadataAsync(CancellationToken cancellationToken = default)
    {
        JsonNode? document = null;
        await LockedAsync("read the metadata", "metadata.get", [MicrovmState.Running, MicrovmState.Paused], async ct => document = await Client.GetMmdsAsync(ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return document!;
    }

    /// <summary>
    /// Changes an interface's rate limits after boot (PATCH /network-interfaces/{id}), checked first. A bucket left
    /// null stays as it is; a <see cref="RateLimiterRules.Removal"/> bucket removes that limit.
    /// </summary>
    /// <exception cref="MachineDescriptionException">A bucket Firecracker would silently ignore, naming it.</exception>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public Task UpdateNetworkInterfaceAsync(PartialNetworkInterface update, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        MachineDescription.CheckLimiterUpdate(nameof(PartialNetworkInterface.RxRateLimiter), update.RxRateLimiter);
        MachineDescription.CheckLimiterUpdate(nameof(PartialNetworkInterface.TxRateLimiter), update.TxRateLimiter);
        return LockedAsync("update a network interface", "network.update", [MicrovmState.Running, MicrovmState.Paused], ct => Client.PatchGuestNetworkInterfaceByIDAsync(update, ct), cancellationToken);
    }
}
