using Kiln.Api;
using Kiln.Vmm;
using Microsoft.Extensions.Logging;

namespace Kiln.Vm;

/// <summary>How a microVM's configuration reaches Firecracker.</summary>
public enum MicrovmStartPath
{
    /// <summary>One API request per resource, then InstanceStart (the named <see cref="BootPlan"/> steps).</summary>
    Api,

    /// <summary>
    /// The whole description as <c>--config-file</c>: Firecracker configures and starts the VM before it serves its
    /// API. A refused document ends the process (exit 1) with the reason in its log.
    /// </summary>
    ConfigFile,
}

/// <summary>Where a microVM's files go and how its VMM process runs.</summary>
public sealed record MicrovmOptions
{
    /// <summary>The firecracker binary.</summary>
    public required string FirecrackerPath { get; init; }

    /// <summary>The API socket (at most 107 bytes); removed before the spawn if left behind.</summary>
    public required string SocketPath { get; init; }

    /// <summary>Where the VMM's stdout and stderr (the guest's serial console) go.</summary>
    public required string ConsolePath { get; init; }

    /// <summary>
    /// How large the console log may grow (<see cref="OutputRotation.Default"/>: 2 files of 8 MiB). An owned VMM's
    /// output is rotated as it is written; a detached one's is rotated (copytruncate) by whoever holds it.
    /// </summary>
    public OutputRotation ConsoleRotation { get; init; } = OutputRotation.Default;

    /// <summary>Firecracker's own log (<c>--log-path</c>): fresh for every boot, the previous one kept as <c>.1</c>.</summary>
    public string? LogPath { get; init; }

    /// <summary>
    /// Firecracker's metrics (<c>--metrics-path</c>): a FIFO made at the start when nothing is there (Firecracker
    /// writes it without blocking and nothing grows on disk), or an existing file it appends to. A microVM launched
    /// here publishes every line through <see cref="Meter"/> (<see cref="Microvm.Metrics"/>). Under a jail, like
    /// <see cref="LogPath"/>, it only says that there are metrics: the FIFO is <c>/metrics.fifo</c> inside the chroot,
    /// owned by the jail's uid/gid, and the reader reads it from the host side.
    /// </summary>
    public string? MetricsPath { get; init; }

    /// <summary>The meter Firecracker's metrics are published on; <see cref="Kiln.Vmm.Telemetry.FirecrackerTelemetry.Meter"/> when null.</summary>
    public System.Diagnostics.Metrics.Meter? Meter { get; init; }

    /// <summary>Firecracker's <c>--id</c> (letters, digits and '-').</summary>
    public string? Id { get; init; }

    /// <summary>The VMM's working directory.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Who owns the VMM process.</summary>
    public VmmOwnership Ownership { get; init; } = VmmOwnership.Owned;

    /// <summary>Extra environment variables for the VMM process.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>
    /// The network namespace the VMM runs in (e.g. a sandbox's <c>/run/netns/kiln-ID</c>, where its TAP is); ours when
    /// null. See <see cref="VmmLaunchOptions.NetworkNamespacePath"/>.
    /// </summary>
    public string? NetworkNamespacePath { get; init; }

    /// <summary>
    /// Detached only: a FIFO (created at boot) that becomes the VMM's stdin, the guest's serial input. An owned VMM's
    /// serial input is its stdin pipe (<see cref="Microvm.Console"/>).
    /// </summary>
    public string? ConsoleInputPath { get; init; }

    /// <summary>
    /// Detached only: the console keeper to start beside the VMM (<see cref="Kiln.Vmm.ConsoleKeeper"/>), so the console
    /// log stays within <see cref="ConsoleRotation"/> with nobody holding the VM; <c>kiln attach</c> and
    /// <see cref="Kiln.Vmm.ConsoleKeeper.ConnectAsync"/> reach the serial console through it. Null: the VMM appends to
    /// <see cref="ConsolePath"/> itself, bounded only while some <see cref="Microvm"/> holds it. Under a jail too (the
    /// jailer's stdio, which firecracker inherits, is the keeper's FIFO), but not a daemonizing one (refused: its
    /// jailer puts the VMM's stdio on /dev/null). A keeper that died is started again by
    /// <see cref="Microvm.RestartConsoleKeeperAsync"/>.
    /// </summary>
    public ConsoleKeeperCommand? ConsoleKeeper { get; init; }

    /// <summary>API sequence or <c>--config-file</c>.</summary>
    public MicrovmStartPath StartPath { get; init; } = MicrovmStartPath.Api;

    /// <summary>Where the <c>--config-file</c> document is written; beside the socket when null.</summary>
    public string? ConfigFilePath { get; init; }

    /// <summary>How long the API socket may take to answer after the spawn.</summary>
    public TimeSpan ApiReadyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// With a config file, how long the VM may take to reach Running after the API answers. An API boot has no such
    /// wait: InstanceStart answers once the VM runs, within the client's request timeout.
    /// </summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The deadline of one API request.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The SIGTERM grace of the default shutdown plan (and of disposing an owned VMM).</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long a balloon change waits for the guest's virtio-balloon driver to activate the device (Firecracker refuses
    /// changes until then); <see cref="BalloonNotActivatedException"/> after it.
    /// </summary>
    public TimeSpan BalloonActivationTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long <see cref="Microvm.ResizeMemoryAsync"/> waits for the guest to plug or give up what was asked before it
    /// reports what the guest has (not an error: the guest moves memory at its own pace).
    /// </summary>
    public TimeSpan MemorySettleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The clock for every deadline.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Where log events go; nowhere when null. With a <see cref="LogPath"/>, Firecracker's own log lines go there too
    /// (category <c>Kiln.Firecracker</c>, at their levels) for a microVM launched here.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// The caller's own steps, run after <c>stale-files</c> and before the spawn, with the boot's spans, failure
    /// handling and rollback (e.g. a driver creating placeholder files the description names).
    /// </summary>
    public IReadOnlyList<BootStep> Preparation { get; init; } = [];

    /// <summary>
    /// Called inside the <c>spawn</c> step just before the VMM is launched: the place to record that one is about to
    /// run, so that a VMM whose owner dies between its launch and <see cref="Spawned"/> can still be found.
    /// </summary>
    public Func<CancellationToken, Task>? Spawning { get; init; }

    /// <summary>
    /// Called inside the <c>spawn</c> step once the VMM runs, before anything waits on it: the place to record its
    /// identity so another process can find (and stop) it even if this one dies during the boot.
    /// </summary>
    public Func<Microvm, CancellationToken, Task>? Spawned { get; init; }

    /// <summary>The default shutdown plan: SIGTERM, then SIGKILL after <see cref="StopTimeout"/>.</summary>
    public ShutdownPlan DefaultShutdownPlan => ShutdownPlan.TerminateThenKill(StopTimeout);

    internal string EffectiveConfigFilePath => ConfigFilePath ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(SocketPath))!, "vm-config.json");

    /// <summary>Refuses options no boot could use, naming the property.</summary>
    /// <exception cref="ArgumentException">A path is empty or the socket path too long, or a timeout is negative.</exception>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(FirecrackerPath, nameof(FirecrackerPath));
        UnixSocketPath.Validate(SocketPath, nameof(SocketPath));
        ArgumentException.ThrowIfNullOrEmpty(ConsolePath, nameof(ConsolePath));
        ArgumentNullException.ThrowIfNull(ConsoleRotation, nameof(ConsoleRotation));
        ConsoleRotation.Validate();
        if (MetricsPath is not null)
            ArgumentException.ThrowIfNullOrEmpty(MetricsPath, nameof(MetricsPath));
        ArgumentOutOfRangeException.ThrowIfLessThan(ApiReadyTimeout, TimeSpan.Zero, nameof(ApiReadyTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(BootTimeout, TimeSpan.Zero, nameof(BootTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(StopTimeout, TimeSpan.Zero, nameof(StopTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(BalloonActivationTimeout, TimeSpan.Zero, nameof(BalloonActivationTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(MemorySettleTimeout, TimeSpan.Zero, nameof(MemorySettleTimeout));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }

    internal ILogger CreateLogger() =>
        LoggerFactory?.CreateLogger("Kiln.Vm.Microvm") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    internal FirecrackerClient CreateClient(ILogger logger) => new(SocketPath, new FirecrackerClientOptions
    {
        RequestTimeout = RequestTimeout,
        TimeProvider = TimeProvider,
        Logger = logger,
    });
}
