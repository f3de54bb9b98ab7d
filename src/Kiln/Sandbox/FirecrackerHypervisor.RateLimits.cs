// Rate limits at run time: PATCH /drives/{id} and PATCH /network-interfaces/{id} through the Vm layer, checked first
// (RateLimits) and answered with what Firecracker then reports (GET /vm/config), so the caller sees the limits in force
// rather than the ones it asked for. A change lasts as long as the VMM: the next start applies the boot configuration.
using Kiln.Api;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>Every drive's and interface's rate limits, as the running VMM reports them.</summary>
    /// <exception cref="SandboxStateException">Neither Running nor Paused.</exception>
    public async Task<SandboxRateLimits> GetRateLimitsAsync(CancellationToken cancellationToken = default)
    {
        SandboxRateLimits? limits = null;
        await LockedAsync(async ct =>
        {
            RequireState("read rate limits", SandboxState.Running, SandboxState.Paused);
            limits = ToLimits(await RequireVm().Client.GetExportVmConfigAsync(ct).ConfigureAwait(false));
        }, cancellationToken).ConfigureAwait(false);
        return limits!;
    }

    /// <summary>
    /// Changes a drive's rate limit while the VM runs. A bucket left null stays as it is;
    /// <see cref="TokenBucketLimit.Unlimited"/> removes it. Returns the drive's limit as Firecracker then reports it.
    /// </summary>
    /// <exception cref="SandboxConfigurationException">A bucket Firecracker would not apply as asked, or no bucket at all, naming it (<c>Limit.Bandwidth.Size</c>).</exception>
    /// <exception cref="SandboxStateException">Neither Running nor Paused.</exception>
    /// <exception cref="SandboxException">The VM has no drive of that id.</exception>
    public async Task<DriveRateLimit> UpdateDriveRateLimitAsync(string driveId, RateLimit limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(limit);
        ValidateResourceId("DriveId", driveId);
        RateLimits.ValidateUpdate("Limit", limit);
        DriveRateLimit? result = null;
        await LockedAsync(async ct =>
        {
            RequireState("change a drive's rate limit", SandboxState.Running, SandboxState.Paused);
            var vm = RequireVm();
            var before = ToLimits(await vm.Client.GetExportVmConfigAsync(ct).ConfigureAwait(false));
            if (!before.Drives.Any(d => d.DriveId == driveId))
                throw new SandboxException($"The VM has no drive '{driveId}' (its drives: {Names(before.Drives.Select(d => d.DriveId))}).") { SandboxId = SandboxId };
            await vm.UpdateDriveAsync(new PartialDrive { DriveId = driveId, RateLimiter = RateLimits.ToApi(limit) }, ct).ConfigureAwait(false);
            var after = ToLimits(await vm.Client.GetExportVmConfigAsync(ct).ConfigureAwait(false));
            result = after.Drives.First(d => d.DriveId == driveId);
            Log.RateLimitChanged(_logger, Id, "drive", driveId);
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    /// <summary>
    /// Changes an interface's receive and/or transmit rate limits while the VM runs (a null direction stays as it
    /// is; within a direction, as for <see cref="UpdateDriveRateLimitAsync"/>). Returns the interface's limits as
    /// Firecracker then reports them. The sandbox network's interface is <see cref="SandboxInterfaceId"/>.
    /// </summary>
    /// <exception cref="SandboxConfigurationException">A bucket Firecracker would not apply as asked, or nothing to change, naming it (<c>Receive.Ops.RefillTimeMs</c>).</exception>
    /// <exception cref="SandboxStateException">Neither Running nor Paused.</exception>
    /// <exception cref="SandboxException">The VM has no interface of that id.</exception>
    public async Task<InterfaceRateLimits> UpdateInterfaceRateLimitsAsync(string interfaceId, RateLimit? receive, RateLimit? transmit, CancellationToken cancellationToken = default)
    {
        ValidateResourceId("InterfaceId", interfaceId);
        if (receive is null && transmit is null)
            throw new SandboxConfigurationException("Receive", "and Transmit are both null: there is nothing to change");
        RateLimits.ValidateUpdate("Receive", receive);
        RateLimits.ValidateUpdate("Transmit", transmit);
        InterfaceRateLimits? result = null;
        await LockedAsync(async ct =>
        {
            RequireState("change an interface's rate limits", SandboxState.Running, SandboxState.Paused);
            var vm = RequireVm();
            var before = ToLimits(await vm.Client.GetExportVmConfigAsync(ct).ConfigureAwait(false));
            if (!before.Interfaces.Any(i => i.InterfaceId == interfaceId))
                throw new SandboxException($"The VM has no network interface '{interfaceId}' (its interfaces: {Names(before.Interfaces.Select(i => i.InterfaceId))}).") { SandboxId = SandboxId };
            await vm.UpdateNetworkInterfaceAsync(new PartialNetworkInterface
            {
                IfaceId = interfaceId,
                RxRateLimiter = RateLimits.ToApi(receive),
                TxRateLimiter = RateLimits.ToApi(transmit),
            }, ct).ConfigureAwait(false);
            var after = ToLimits(await vm.Client.GetExportVmConfigAsync(ct).ConfigureAwait(false));
            result = after.Interfaces.First(i => i.InterfaceId == interfaceId);
            Log.RateLimitChanged(_logger, Id, "interface", interfaceId);
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    private static SandboxRateLimits ToLimits(FullVmConfiguration config) => new(
        [.. (config.Drives ?? []).Select(d => new DriveRateLimit(d.DriveId, RateLimits.FromApi(d.RateLimiter)))],
        [.. (config.NetworkInterfaces ?? []).Select(n => new InterfaceRateLimits(n.IfaceId, RateLimits.FromApi(n.RxRateLimiter), RateLimits.FromApi(n.TxRateLimiter)))]);

    private static string Names(IEnumerable<string> ids) => ids.Any() ? string.Join(", ", ids) : "none";
}
