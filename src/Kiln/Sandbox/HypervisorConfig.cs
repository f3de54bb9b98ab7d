namespace Kiln.Sandbox;

/// <summary>
/// What a sandbox's VM is made of (seed: HypervisorConfig). Immutable; change with <c>with</c>.
/// Validation runs before anything starts and names the bad property.
/// </summary>
public sealed record HypervisorConfig
{
    /// <summary>The firecracker binary (or a stand-in).</summary>
    public required string FirecrackerPath { get; init; }

    /// <summary>The guest kernel (vmlinux).</summary>
    public required string KernelPath { get; init; }

    /// <summary>An initrd; either this or <see cref="ImagePath"/> (or both).</summary>
    public string? InitrdPath { get; init; }

    /// <summary>A root filesystem image, attached as a non-root drive so partitioned images boot (seed behaviour).</summary>
    public string? ImagePath { get; init; }

    /// <summary>Attach <see cref="ImagePath"/> read-only (the default).</summary>
    public bool ImageReadOnly { get; init; } = true;

    /// <summary>Extra kernel parameters, merged with the driver's own (configured ones win on the same key).</summary>
    public IReadOnlyList<KernelParam> KernelParams { get; init; } = [];

    /// <summary>vCPUs: 1 to 32.</summary>
    public int VcpuCount { get; init; } = 1;

    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; } = 128;

    /// <summary>Placeholder drives attached at boot for block hot-plug (seed: fcDiskPoolSize).</summary>
    public int BlockPoolSize { get; init; } = 8;

    /// <summary>
    /// Firecracker memory hot-plug (a virtio-mem device, Firecracker ≥ 1.14); <c>ResizeMemory</c> is refused without
    /// it.
    /// </summary>
    public MemoryHotplugSettings? MemoryHotplug { get; init; }

    /// <summary>
    /// A virtio-balloon device: lets <c>ResizeMemory</c> take memory below <see cref="MemoryMiB"/> and give it back,
    /// and reports the guest's memory statistics. None when null.
    /// </summary>
    public BalloonSettings? Balloon { get; init; }

    /// <summary>
    /// Firecracker writes its metrics into a FIFO in the sandbox directory (<c>metrics.fifo</c>): a driver that started
    /// the VM publishes every line through the <c>Kiln.Firecracker</c> meter, and <c>kiln stats</c> reads the latest.
    /// With <see cref="Jail"/>, the FIFO is <c>/metrics.fifo</c> inside the chroot, owned by the jail's uid/gid.
    /// </summary>
    public bool Metrics { get; init; }

    /// <summary>
    /// The sandbox's own network (<see cref="Kiln.Host.Network.SandboxNetworks"/>): a TAP in a namespace of its
    /// own (isolated or NAT) or in the user's, the guest's address as the kernel's <c>ip=</c> argument, the MAC
    /// derived from the id unless given. Null (or mode None): none. TAPs the user made stay <c>NetworkDevice</c>s.
    /// </summary>
    public Kiln.Host.Network.SandboxNetworkSpec? Network { get; init; }

    /// <summary>The metadata service (MMDS) on the sandbox network's interface; needs <see cref="Network"/>.</summary>
    public MetadataSettings? Metadata { get; init; }

    /// <summary>Where sandbox directories live.</summary>
    public required string RootDirectory { get; init; }

    /// <summary>How long the API may take to answer after spawn.</summary>
    public TimeSpan ApiReadyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// With a config file (<see cref="Kiln.Vm.MicrovmStartPath.ConfigFile"/>), how long the VM may take to reach Running; an
    /// API boot's <c>InstanceStart</c> answers once the VM runs, within the request timeout.
    /// </summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long one API request may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How large each of the two console log files (<c>console.log</c>, <c>console.log.1</c>) may grow; null:
    /// <see cref="Kiln.Vmm.OutputRotation.Default"/>'s 8 MiB.
    /// </summary>
    public long? ConsoleLimitBytes { get; init; }

    /// <summary>The default <see cref="StopTimeout"/>: 15 s, as the seed.</summary>
    public static readonly TimeSpan DefaultStopTimeout = TimeSpan.FromSeconds(15);

    /// <summary>SIGTERM grace before SIGKILL (default <see cref="DefaultStopTimeout"/>).</summary>
    public TimeSpan StopTimeout { get; init; } = DefaultStopTimeout;

    /// <summary>Run the VMM under Firecracker's jailer (docs/jail.md); directly when null.</summary>
    public Kiln.Vmm.JailSettings? Jail { get; init; }

    /// <summary>
    /// Restore the VM from a template or snapshot instead of booting <see cref="KernelPath"/> (which is then only a
    /// record of the machine and need not exist); null: boot. See <see cref="SandboxRestore"/>.
    /// </summary>
    public SandboxRestore? Restore { get; init; }
}

/// <summary>MMDS for a sandbox: its version (V2, session tokens, unless V1 is asked for) and the first document.</summary>
public sealed record MetadataSettings
{
    /// <summary>The MMDS version; V2 by default.</summary>
    public Kiln.Api.MmdsVersion Version { get; init; } = Kiln.Api.MmdsVersion.V2;

    /// <summary>The link-local address the guest reaches it on; Firecracker's 169.254.169.254 when null.</summary>
    public string? Ipv4Address { get; init; }

    /// <summary>The document the guest sees from the first boot on (PUT before InstanceStart); empty when null.</summary>
    public System.Text.Json.Nodes.JsonObject? Document { get; init; }
}

/// <summary>The hot-pluggable memory region (virtio-mem).</summary>
/// <param name="TotalSizeMiB">The most memory that can be plugged beyond <see cref="HypervisorConfig.MemoryMiB"/>.</param>
/// <param name="SlotSizeMiB">The host-side granularity.</param>
/// <param name="BlockSizeMiB">The guest-side granularity.</param>
public sealed record MemoryHotplugSettings(int TotalSizeMiB, int SlotSizeMiB = 128, int BlockSizeMiB = 2);

/// <summary>The balloon device a sandbox boots with.</summary>
/// <param name="InitialMiB">What the balloon holds from boot (taken from <see cref="HypervisorConfig.MemoryMiB"/>).</param>
/// <param name="DeflateOnOom">Whether the guest may deflate it when it runs out of memory.</param>
/// <param name="StatisticsIntervalSeconds">How often the guest reports statistics; 0 turns them off (for good).</param>
/// <param name="FreePageHinting">Whether free page hinting runs can be started.</param>
/// <param name="FreePageReporting">Whether the guest reports freed pages to the host as it frees them.</param>
public sealed record BalloonSettings(int InitialMiB = 0, bool DeflateOnOom = true, int StatisticsIntervalSeconds = 1,
    bool FreePageHinting = false, bool FreePageReporting = false);

/// <summary>A kernel command-line parameter: <c>key</c> or <c>key=value</c>.</summary>
public sealed record KernelParam(string Key, string? Value = null)
{
    /// <inheritdoc />
    public override string ToString() => Value is null ? Key : $"{Key}={Value}";
}
