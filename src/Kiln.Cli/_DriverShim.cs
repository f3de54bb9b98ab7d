// TEMPORARY: declarations of the driver/API public contract so the CLI compiles before they land on main.
// Deleted when the real driver is merged.
#pragma warning disable CA1036, CA1822, CA1812, IDE0060, CS1591, CA1515, CA1063, CA1816, CA1054, CA1056
using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox
{
    public enum VmmOwnership { Owned, Detached }

    public sealed record FirecrackerHypervisorOptions
    {
        public ILoggerFactory? LoggerFactory { get; init; }
        public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
        public VmmOwnership Ownership { get; init; } = VmmOwnership.Owned;
    }

    public sealed class FirecrackerHypervisor : IHypervisor
    {
        public FirecrackerHypervisor(FirecrackerHypervisorOptions? options = null) { }
        public static Task<FirecrackerHypervisor> OpenAsync(string rootDirectory, string sandboxId, FirecrackerHypervisorOptions? options = null, CancellationToken ct = default) => throw new NotImplementedException();
        public Kiln.Api.FirecrackerClient? Api => null;
        public IReadOnlyList<PoolSlot> PoolSlots => [];
        public DateTimeOffset? StartedAt => null;
        public string SocketPath => "";
        public string? SandboxId => null;
        public HypervisorConfig Config => throw new NotImplementedException();
        public string SandboxDirectory => "";
        public SandboxState State => SandboxState.Created;
        public string ConsolePath => "";
        public HypervisorCapabilities Capabilities => HypervisorCapabilities.None;
        public int? Pid => null;
        public Task CreateAsync(string sandboxId, HypervisorConfig config, CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task StartAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task StopAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task PauseAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task ResumeAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task<SandboxSnapshot> SaveAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task AddDeviceAsync(HypervisorDevice device, CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task<HotplugResult> HotplugAddAsync(HypervisorDevice device, CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task HotplugRemoveAsync(HypervisorDevice device, CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task<MemoryResizeResult> ResizeMemoryAsync(uint requestedMiB, uint blockSizeMiB, bool probe, CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task<VcpuResizeResult> ResizeVcpusAsync(uint requestedVcpus, CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public void Disconnect() { }
        public Task<IReadOnlyDictionary<int, int>> GetVcpuThreadIdsAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public Task CleanupAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    public sealed record PoolSlot(int Index, string DriveId, string GuestDevice, string? HostPath, bool ReadOnly);
    public sealed record SandboxInfo(string Id, string Directory, SandboxState State, int? Pid, HypervisorConfig Config, DateTimeOffset? StartedAt, string SocketPath, string ConsolePath, IReadOnlyList<PoolSlot> PoolSlots) { public VmmOwnership Ownership { get; init; } }

    public static class SandboxCatalog
    {
        public static Task<IReadOnlyList<SandboxInfo>> ListAsync(string root, CancellationToken ct = default) => throw new NotImplementedException();
        public static Task<SandboxInfo> GetAsync(string root, string id, CancellationToken ct = default) => throw new NotImplementedException();
    }

    public static class SandboxIds
    {
        public static bool IsValid(string id, string root, out string? reason) { reason = null; return true; }
        public static void Validate(string id, string root) { }
    }
}

namespace Kiln.Api
{
    public sealed class FirecrackerClient
    {
        public Task<FullVmConfiguration> GetExportVmConfigAsync(CancellationToken ct = default) => throw new NotImplementedException();
    }

    public class FirecrackerException(string message) : Exception(message);

    public sealed class FirecrackerApiException(string message, string? faultMessage) : FirecrackerException(message)
    {
        public string? FaultMessage { get; } = faultMessage;
    }

}
