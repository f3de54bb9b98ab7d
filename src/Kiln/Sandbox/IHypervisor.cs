// The Kata-style hypervisor interface (seed: hypervisor.go's `hypervisor`), in async C#.
// One IHypervisor drives one sandbox: one firecracker process, one state directory.
namespace Kiln.Sandbox;

/// <summary>
/// Drives one sandbox's virtual machine monitor: the operations of Kata's hypervisor interface.
/// Operations Firecracker cannot perform throw <see cref="HypervisorNotSupportedException"/>; none succeed silently.
/// </summary>
public interface IHypervisor : IAsyncDisposable
{
    /// <summary>The sandbox id given to <see cref="CreateAsync"/>; null before it.</summary>
    string? SandboxId { get; }

    /// <summary>The configuration given to <see cref="CreateAsync"/> (seed: hypervisorConfig()).</summary>
    HypervisorConfig Config { get; }

    /// <summary>Where the sandbox's state lives: <c>Config.RootDirectory/SandboxId</c>.</summary>
    string SandboxDirectory { get; }

    /// <summary>The current lifecycle state as this driver knows it.</summary>
    SandboxState State { get; }

    /// <summary>
    /// Validates the id and configuration, creates the sandbox directory, and loads persisted state if a previous
    /// driver left some (re-attaching to a VMM that still runs). Starts nothing.
    /// </summary>
    Task CreateAsync(string sandboxId, HypervisorConfig config, CancellationToken cancellationToken = default);

    /// <summary>Launches firecracker, configures and boots the VM, and returns once Firecracker reports Running.</summary>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>SIGTERM, then SIGKILL after <see cref="HypervisorConfig.StopTimeout"/>; reaps. Idempotent.</summary>
    Task StopAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="StopAsync(CancellationToken)"/>, with this stop's own grace period between SIGTERM and SIGKILL
    /// (<see cref="TimeSpan.Zero"/> kills at once). The configured <see cref="HypervisorConfig.StopTimeout"/> is unchanged.
    /// </summary>
    Task StopAsync(TimeSpan gracePeriod, CancellationToken cancellationToken = default);

    /// <summary>Pauses the guest's vCPUs.</summary>
    Task PauseAsync(CancellationToken cancellationToken = default);

    /// <summary>Resumes a paused guest.</summary>
    Task ResumeAsync(CancellationToken cancellationToken = default);

    /// <summary>Saves a snapshot of the (paused) VM into the sandbox directory.</summary>
    Task<SandboxSnapshot> SaveAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds a device to the VM's boot configuration. Before the API is ready the device is queued and replayed in
    /// order during every start (seed: pendingDevices).
    /// </summary>
    Task AddDeviceAsync(HypervisorDevice device, CancellationToken cancellationToken = default);

    /// <summary>Hot-plugs a device into the running VM. Block devices take a free placeholder slot of the pool.</summary>
    Task<HotplugResult> HotplugAddAsync(HypervisorDevice device, CancellationToken cancellationToken = default);

    /// <summary>Removes a hot-plugged device; for a block device, its slot goes back to its placeholder.</summary>
    Task HotplugRemoveAsync(HypervisorDevice device, CancellationToken cancellationToken = default);

    /// <summary>Resizes guest memory (Firecracker memory hot-plug).</summary>
    Task<MemoryResizeResult> ResizeMemoryAsync(uint requestedMiB, uint blockSizeMiB, bool probe, CancellationToken cancellationToken = default);

    /// <summary>Resizes vCPUs: Firecracker cannot, so this always throws <see cref="HypervisorNotSupportedException"/>.</summary>
    Task<VcpuResizeResult> ResizeVcpusAsync(uint requestedVcpus, CancellationToken cancellationToken = default);

    /// <summary>The file holding the guest's serial console output.</summary>
    string ConsolePath { get; }

    /// <summary>Firecracker's own log file (its <c>--log-path</c>): the API requests it served and the errors it met.</summary>
    string VmmLogPath { get; }

    /// <summary>Forgets the connection to the VMM without stopping it (seed: disconnect()).</summary>
    void Disconnect();

    /// <summary>What this hypervisor can do.</summary>
    HypervisorCapabilities Capabilities { get; }

    /// <summary>vCPU index → host thread id, from <c>/proc/PID/task/*/comm</c> (<c>fc_vcpu N</c>).</summary>
    Task<IReadOnlyDictionary<int, int>> GetVcpuThreadIdsAsync(CancellationToken cancellationToken = default);

    /// <summary>Removes the socket, placeholders, console and state. Safe twice; refuses while the VMM runs.</summary>
    Task CleanupAsync(CancellationToken cancellationToken = default);

    /// <summary>The firecracker process id, or null when none runs.</summary>
    int? Pid { get; }
}

/// <summary>A sandbox's lifecycle state.</summary>
public enum SandboxState
{
    /// <summary>Created (directory exists); no VMM has been started.</summary>
    Created,
    /// <summary>The VMM is being launched and configured.</summary>
    Starting,
    /// <summary>Firecracker reports Running.</summary>
    Running,
    /// <summary>Firecracker reports Paused.</summary>
    Paused,
    /// <summary>Stopped through <see cref="IHypervisor.StopAsync(CancellationToken)"/>.</summary>
    Stopped,
    /// <summary>The VMM process ended on its own (crash, guest reboot, killed behind Kiln's back).</summary>
    Exited,
}

/// <summary>What a hypervisor can do (seed: types.Capabilities).</summary>
[Flags]
public enum HypervisorCapabilities
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>Block devices can be hot-plugged (through the placeholder pool).</summary>
    BlockDeviceHotplug = 1,
    /// <summary>A host filesystem can be shared into the guest (virtio-fs/9p). Firecracker: no.</summary>
    FsSharing = 2,
    /// <summary>Snapshots (pause, save, restore).</summary>
    Snapshots = 4,
}

/// <summary>The files of a saved snapshot.</summary>
public sealed record SandboxSnapshot(string StatePath, string MemoryPath);

/// <summary>The outcome of a memory resize.</summary>
public sealed record MemoryResizeResult(uint CurrentMiB, uint PluggedMiB);

/// <summary>The outcome of a vCPU resize.</summary>
public sealed record VcpuResizeResult(uint CurrentVcpus, uint NewVcpus);
