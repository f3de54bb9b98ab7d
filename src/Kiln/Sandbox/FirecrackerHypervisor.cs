// The Kata-style Firecracker driver (seed: fc.go), brought up to Firecracker v1.16: one instance drives one sandbox —
// one microVM (Kiln.Vm.Microvm, which owns the firecracker process) and one state directory. What is Kata's stays
// here: the placeholder pool and its slots, the device queue before start, the persisted record and re-attach, the
// cross-process lock. Public operations take a lock and check the lifecycle state, then call private Unsafe… methods
// (testcontainers' shape).
using Kiln.Api;
using Kiln.Host;
using Kiln.Vm;
using Kiln.Vmm;
using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox;

/// <summary>Drives one sandbox's Firecracker VMM.</summary>
public sealed partial class FirecrackerHypervisor : IHypervisor
{
    /// <summary>The drive id of the root filesystem image (attached as a non-root drive, as the seed does).</summary>
    public const string RootfsDriveId = "rootfs";

    private readonly FirecrackerHypervisorOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<HypervisorDevice> _devices = [];
    private HypervisorConfig? _config;
    private SandboxPaths? _paths;
    private BlockPool? _pool;
    private Microvm? _vm;
    // Written by the exit watcher's continuation too: volatile so readers see it without taking the lock.
    private volatile SandboxState _state = SandboxState.Created;
    private VmmOwnership _ownership;
    private bool _stopping;

    /// <summary>The guest memory after the last resize of this VM (its record shows it; another VM's does not count).</summary>
    private (Microvm Vm, int MiB)? _guestMemory;

    /// <summary>How the last VMM ended on its own (null while one runs, after a stop, or when unknown).</summary>
    private VmmProcessState? _exit;

    /// <summary>The exit watcher's write of the record (SandboxExitRecord); DisposeAsync waits for it.</summary>
    private volatile Task _exitRecord = Task.CompletedTask;

    // Ticks since boot taken just before a launch, recorded until the launched VMM's PID is (see SandboxStateFile).
    private ulong? _spawningSince;
    private int _disposed;

    /// <summary>Creates a driver; <see cref="CreateAsync"/> binds it to a sandbox.</summary>
    public FirecrackerHypervisor(FirecrackerHypervisorOptions? options = null)
    {
        _options = options ?? new FirecrackerHypervisorOptions();
        _logger = _options.CreateLogger();
        _time = _options.TimeProvider;
        _ownership = _options.Ownership;
    }

    /// <summary>
    /// Re-attaches to a sandbox from its persisted state (the owner restarted, or another process such as the CLI).
    /// </summary>
    /// <exception cref="SandboxNotFoundException">No state for that id under the root.</exception>
    public static async Task<FirecrackerHypervisor> OpenAsync(string rootDirectory, string sandboxId,
        FirecrackerHypervisorOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootDirectory);
        SandboxIds.Validate(sandboxId, rootDirectory);
        var paths = SandboxPaths.For(rootDirectory, sandboxId);
        var state = await SandboxStateFile.TryReadAsync(paths.StatePath, cancellationToken).ConfigureAwait(false)
            ?? throw new SandboxNotFoundException(sandboxId, rootDirectory) { SandboxId = sandboxId };
        var driver = new FirecrackerHypervisor(options);
        driver.Bind(sandboxId, state.Config with { RootDirectory = rootDirectory }, paths);
        driver.Adopt(state);
        try
        {
            await driver.SweepIfNoVmmAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await CleanupFailures.RunAsync(e, () => driver.DisposeAsync().AsTask()).ConfigureAwait(false);
            throw;
        }
        return driver;
    }

    /// <inheritdoc />
    public string? SandboxId { get; private set; }

    /// <inheritdoc />
    public HypervisorConfig Config => _config ?? throw new InvalidOperationException("CreateAsync has not been called.");

    /// <inheritdoc />
    public string SandboxDirectory => Paths.Directory;

    /// <inheritdoc />
    /// <remarks>Running or Paused turn into Exited the moment the VMM process is gone, not only once its exit is processed.</remarks>
    public SandboxState State =>
        _state is SandboxState.Running or SandboxState.Paused && _vm is { } vm && vm.Process.HasExited ? SandboxState.Exited : _state;

    /// <inheritdoc />
    public string ConsolePath => Paths.ConsolePath;

    /// <inheritdoc />
    public string VmmLogPath => Config.Jail is { } jail ? JailLayout.For(jail, Config.FirecrackerPath, InstanceId(Id)).OnHost("/firecracker.log") : Paths.VmmLogPath;

    /// <summary>Firecracker's metrics FIFO, when <see cref="HypervisorConfig.Metrics"/> is on; null otherwise.</summary>
    public string? MetricsPath => !Config.Metrics ? null
        : Config.Jail is { } jail ? JailLayout.For(jail, Config.FirecrackerPath, InstanceId(Id)).OnHost(Microvm.JailedMetricsPath) : Paths.MetricsPath;

    /// <summary>The API socket path.</summary>
    public string SocketPath => Paths.SocketPath;

    /// <summary>The API client of the running VMM (for <c>kiln inspect</c>: GET /vm/config); null when none runs.</summary>
    public FirecrackerClient? Api => _vm?.Client;

    /// <summary>The sandbox's microVM while one runs (or was attached to).</summary>
    public Microvm? Vm => _vm;

    /// <summary>The block pool's slots.</summary>
    public IReadOnlyList<PoolSlot> PoolSlots => _pool is null ? [] : [.. _pool.Slots.Select(ToPoolSlot)];

    /// <summary>The boot-time devices queued by <see cref="AddDeviceAsync"/>, in the order every start attaches them.</summary>
    public IReadOnlyList<HypervisorDevice> Devices => [.. _devices];

    /// <summary>When the running VMM was started.</summary>
    public DateTimeOffset? StartedAt { get; private set; }

    /// <summary>Who owns the VMM.</summary>
    public VmmOwnership Ownership => _ownership;

    /// <inheritdoc />
    public int? Pid => _vm is { Process.HasExited: false } vm ? vm.Pid : null;

    /// <inheritdoc />
    public HypervisorCapabilities Capabilities => HypervisorCapabilities.BlockDeviceHotplug | HypervisorCapabilities.Snapshots;

    private SandboxPaths Paths => _paths ?? throw new InvalidOperationException("CreateAsync has not been called.");

    private string Id => SandboxId ?? throw new InvalidOperationException("CreateAsync has not been called.");

    /// <inheritdoc />
    public async Task CreateAsync(string sandboxId, HypervisorConfig config, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (SandboxId is not null)
                throw new SandboxStateException("create (this driver already drives a sandbox)", _state, SandboxState.Created) { SandboxId = SandboxId };
            SandboxIds.Validate(sandboxId, config.RootDirectory);
            HypervisorConfigValidator.Validate(config);
            var paths = SandboxPaths.For(config.RootDirectory, sandboxId);
            Directory.CreateDirectory(config.RootDirectory);
            if (config.Jail is { } jail)
                ValidateJail(jail, sandboxId, config);
            if (OperatingSystem.IsWindows())
                throw new PlatformNotSupportedException("Firecracker runs on Linux only.");
            var made = !Directory.Exists(paths.Directory);
            try
            {
                // Private to its owner: it holds the API socket, which is full control of the VM.
                Directory.CreateDirectory(paths.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                // Also when it existed already (made by hand, or by an older Kiln): the mode above applies only to a new one.
                File.SetUnixFileMode(paths.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new SandboxException($"The sandbox directory {paths.Directory} could not be made: {e.Message}", e) { SandboxId = sandboxId };
            }

            try
            {
                // Under the lock: another driver may be creating or starting this very sandbox now.
                using var sandboxLock = await SandboxLock.AcquireAsync(paths.Directory, sandboxId, LockTimeoutFor(config), _time, cancellationToken).ConfigureAwait(false);
                var persisted = await SandboxStateFile.TryReadAsync(paths.StatePath, cancellationToken).ConfigureAwait(false);
                if (persisted is not null && SandboxCatalog.IsAlive(persisted))
                {
                    // A VMM from an earlier driver still runs: it was configured with the persisted configuration.
                    Bind(sandboxId, persisted.Config with { RootDirectory = config.RootDirectory }, paths);
                    Adopt(persisted);
                    return;
                }
                if (persisted is not null)
                {
                    // Its VMM is gone, and with it whatever network the recorded configuration had.
                    Bind(sandboxId, persisted.Config with { RootDirectory = config.RootDirectory }, paths);
                    await SweepNetworkAsync(cancellationToken).ConfigureAwait(false);
                }
                Bind(sandboxId, config, paths);
                if (persisted is not null)
                {
                    // Its VMM is gone: what is left is a record; the next start follows this driver's options, with the
                    // boot-time devices queued for this sandbox.
                    _state = SandboxCatalog.LiveState(persisted);
                    _devices.AddRange(persisted.Devices);
                }
                await PersistAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Nothing recorded (a full or read-only file system, say): this driver is unbound again, and a
                // directory it made is removed, unless something else has been put in it meanwhile (found by
                // DiskFaultTests: an empty sandbox directory was left behind).
                Unbind();
                if (made)
                    CleanupFailures.Run(e, () => RemoveDirectoryIfEmpty(paths.Directory));
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Bind(string id, HypervisorConfig config, SandboxPaths paths)
    {
        SandboxId = id;
        _config = config;
        _paths = paths;
        // A template clone's placeholders are its own copies of the template's (FirecrackerHypervisor.RestorePool.cs).
        _pool = new BlockPool(config.BlockPoolSize, config.ImagePath is null ? 0 : 1,
            config.Restore?.TemplateDirectory is null ? paths.PlaceholderPath : i => ClonePlaceholderPath(paths, i));
    }

    private void Unbind()
    {
        SandboxId = null;
        _config = null;
        _paths = null;
        _pool = null;
        _state = SandboxState.Created;
        _devices.Clear();
        _ownership = _options.Ownership;
        StartedAt = null;
    }

    private static void RemoveDirectoryIfEmpty(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: false);
        }
        catch (IOException)
        {
            // Not empty (another driver's record) or already gone: not this create's to remove.
        }
    }

    private void Adopt(SandboxStateFile state)
    {
        _ownership = state.Ownership;
        StartedAt = state.StartedAt;
        _devices.AddRange(state.Devices);
        AdoptSlots(state.PoolSlots);
        _state = SandboxCatalog.LiveState(state);
        _exit = state.State == SandboxState.Exited && state.ExitCode is { } code ? new VmmProcessState.Exited(code)
            : state.State == SandboxState.Exited && state.ExitSignal is { } signal ? new VmmProcessState.Crashed(signal)
            : null;
        // A jailed VMM whose owner died before recording it: found by its jail, its record rebuilt.
        var jail = state.Jail ?? (state.Pid is null ? SandboxCatalog.FindUnrecordedJail(state) : null);
        var identity = state.Pid is { } recordedPid && state.StartTimeTicks is { } ticks
            ? new ProcessIdentity(recordedPid, ticks, state.ExecutablePath)
            : state.Config.Jail is null ? SandboxCatalog.FindUnrecordedVmm(state) : jail?.Identity;
        if (_state is SandboxState.Running or SandboxState.Paused or SandboxState.Starting && identity is { Pid: var pid })
        {
            var vm = jail is { } jailRecord
                ? Microvm.TryAttachJailed(jailRecord, MicrovmOptions(), ToMicrovmState(_state), state.ConsoleKeeper)
                : Microvm.TryAttach(identity, MicrovmOptions(), ToMicrovmState(_state), state.ConsoleKeeper);
            if (vm is null)
            {
                Log.RecordedVmmGone(_logger, Id, pid);
                _state = SandboxState.Exited;
                return;
            }
            _vm = vm;
            if (state.StateInDoubt == true)
                vm.MarkStateInDoubt();
            _guestMemory = state.GuestMemoryMiB is { } resized ? (vm, resized) : null;
            WatchForUnexpectedExit(vm);
            Log.Reattached(_logger, Id, pid);
        }
    }

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var sandboxLock = await EnterSandboxAsync(cancellationToken).ConfigureAwait(false);
            RequireState("start", SandboxState.Created, SandboxState.Stopped, SandboxState.Exited);
            await UnsafeStartAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken = default) => StopAsync(Config.StopTimeout, cancellationToken);

    /// <inheritdoc />
    public async Task StopAsync(TimeSpan gracePeriod, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(gracePeriod, TimeSpan.Zero);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var sandboxLock = await EnterSandboxAsync(cancellationToken).ConfigureAwait(false);
            await UnsafeStopAsync(gracePeriod, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task UnsafeStopAsync(TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        if (_vm is { } vm)
        {
            _stopping = true;
            var outcome = await vm.StopAsync(ShutdownPlan.TerminateThenKill(gracePeriod), cancellationToken).ConfigureAwait(false);
            Log.Stopped(_logger, Id, outcome.EndedBy?.ToString() ?? "already exited", outcome.ExitStatus);
            await ReleaseVmAsync().ConfigureAwait(false);
        }
        if (_state is SandboxState.Created)
            return;
        // Firecracker leaves its socket behind when it dies; the next start would otherwise be refused.
        Microvm.DeleteFile(Paths.SocketPath);
        _pool?.Reset();
        _slotsInDoubt = [];
        // The network lives as long as the VMM: namespace, TAP, veth and NAT rules go with it.
        if (Config.Network is { Mode: not Kiln.Host.Network.NetworkMode.None })
            await Networks.TearDownAsync(Id, CancellationToken.None).ConfigureAwait(false);
        // So does the jail: its chroot (with a clone's snapshot links and drive copies), mounts and cgroups; refused
        // (JailInUseException) only while a live VMM still uses it.
        if (Config.Jail is { } jail)
        {
            var layout = JailLayout.For(jail, Config.FirecrackerPath, InstanceId(Id));
            await JailedVmm.RemoveStaleAsync(layout, JailedVmm.CgroupDirectoriesFor(jail, layout), _time, CancellationToken.None).ConfigureAwait(false);
        }
        _state = SandboxState.Stopped;
        // Another driver may have removed the sandbox (kiln rm --force while a foreground kiln run owns it): there is
        // no record left to update, and writing one would fail (or bring back a directory that was meant to go).
        // A stop has ended the VMM and cannot be undone: on a full disk its record is written over the old one.
        if (Directory.Exists(Paths.Directory))
            await PersistAsync(CancellationToken.None, inPlaceWhenFull: true).ConfigureAwait(false);
    }

    private async Task ReleaseVmAsync()
    {
        if (_vm is not null)
        {
            // Ended, or not this process's to stop: disposing only releases the handles.
            await _vm.DisposeAsync().ConfigureAwait(false);
            _vm = null;
        }
        _stopping = false;
    }

    /// <inheritdoc />
    public Task PauseAsync(CancellationToken cancellationToken = default) =>
        LockedAsync(async ct =>
        {
            RequireState("pause", SandboxState.Running);
            var vm = RequireVm();
            await ChangeRunStateAsync(vm, vm.PauseAsync, ct).ConfigureAwait(false);
            _state = SandboxState.Paused;
            await PersistOrUndoAsync("pause", SandboxState.Running, () => vm.ResumeAsync(CancellationToken.None)).ConfigureAwait(false);
        }, cancellationToken);

    /// <inheritdoc />
    public Task ResumeAsync(CancellationToken cancellationToken = default) =>
        LockedAsync(async ct =>
        {
            RequireState("resume", SandboxState.Paused);
            var vm = RequireVm();
            await ChangeRunStateAsync(vm, vm.ResumeAsync, ct).ConfigureAwait(false);
            _state = SandboxState.Running;
            await PersistOrUndoAsync("resume", SandboxState.Paused, () => vm.PauseAsync(CancellationToken.None)).ConfigureAwait(false);
        }, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Firecracker snapshots only a paused VM; this does not pause implicitly.</remarks>
    public async Task<SandboxSnapshot> SaveAsync(CancellationToken cancellationToken = default)
    {
        SandboxSnapshot? snapshot = null;
        await LockedAsync(async ct =>
        {
            RequireState("save a snapshot", SandboxState.Paused);
            var paths = Paths;
            await RequireVm().CreateSnapshotAsync(new SnapshotCreateParams
            {
                SnapshotPath = paths.SnapshotStatePath,
                MemFilePath = paths.SnapshotMemoryPath,
                SnapshotType = SnapshotType.Full,
            }, ct).ConfigureAwait(false);
            snapshot = new SandboxSnapshot(paths.SnapshotStatePath, paths.SnapshotMemoryPath);
        }, cancellationToken).ConfigureAwait(false);
        return snapshot!;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Boot-time devices can only be given before the VM starts (Firecracker refuses PUT /drives and
    /// /network-interfaces after boot without PCI); they are queued, saved in the state file (so a driver in another
    /// process starts the sandbox with them too) and replayed in order by every start, after the rootfs and the block
    /// pool, so queued block drives follow the pool in the guest's device names. Drive and interface ids are
    /// Firecracker resource ids: letters, digits and underscores only.
    /// </remarks>
    public Task AddDeviceAsync(HypervisorDevice device, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        return LockedAsync(async ct =>
        {
            RequireState("add a boot-time device", SandboxState.Created, SandboxState.Stopped, SandboxState.Exited);
            ValidateDevice(device);
            _devices.Add(device);
            try
            {
                // Persisted at once: a driver in another process (the CLI, a restarted owner) starts it with them.
                await PersistAsync(ct).ConfigureAwait(false);
            }
            catch
            {
                _devices.RemoveAt(_devices.Count - 1);
                throw;
            }
            Log.DeviceQueued(_logger, Id, device);
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Only block devices, through the pool: the drive's backing file is swapped with PATCH /drives/drive_N, which
    /// notifies the guest itself (no BlockDeviceRescan since Firecracker 0.21). Firecracker cannot PATCH
    /// <c>is_read_only</c>, and the placeholders are attached writable (so a slot can take any writable file), so a
    /// read-only hot-plug is refused rather than silently attached writable.
    /// </remarks>
    public async Task<HotplugResult> HotplugAddAsync(HypervisorDevice device, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        HotplugResult? result = null;
        await LockedAsync(async ct =>
        {
            if (device is not BlockDevice block)
                throw new HypervisorNotSupportedException("Hot-plug of " + device.GetType().Name, "Firecracker hot-plugs only block devices (through the placeholder pool)") { SandboxId = SandboxId };
            if (block.ReadOnly)
                throw new HypervisorNotSupportedException("Read-only block hot-plug", "Firecracker cannot change is_read_only of a drive after boot and the pool's placeholders are writable") { SandboxId = SandboxId };
            RequireState("hot-plug a device", SandboxState.Running, SandboxState.Paused);
            var pool = _pool!;
            var slot = pool.FirstFree() ?? throw new BlockPoolExhaustedException(pool.Size) { SandboxId = SandboxId };
            var hostPath = Path.GetFullPath(block.HostPath);
            if (pool.FindByHostPath(hostPath) is { } taken)
                throw new SandboxException($"{hostPath} is already attached in pool slot {taken.Index} ({taken.GuestDevice}); two drives on one file would corrupt it.") { SandboxId = SandboxId };
            var vm = RequireVm();
            var pathForVmm = vm.ExposeForHotplug(hostPath, slot.DriveId, readOnly: false);
            try
            {
                await vm.UpdateDriveAsync(new PartialDrive { DriveId = slot.DriveId, PathOnHost = pathForVmm }, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (UnansweredRequest.MayHaveTakenEffect(e) && !vm.Process.HasExited)
            {
                // Firecracker may have swapped the file in: the slot keeps it (and its exposure) until it is asked.
                pool.Set(slot.Index, hostPath);
                await SlotInDoubtAsync(slot.Index, e).ConfigureAwait(false);
                throw;
            }
            catch
            {
                vm.WithdrawHotplug(slot.DriveId);
                throw;
            }
            var free = slot;
            slot = pool.Set(slot.Index, hostPath);
            await PersistOrUndoAsync("hot-plug", _state, async () =>
            {
                await vm.UpdateDriveAsync(new PartialDrive { DriveId = free.DriveId, PathOnHost = vm.DrivePathForVmm(free.DriveId, free.PlaceholderPath) }, CancellationToken.None).ConfigureAwait(false);
                vm.WithdrawHotplug(free.DriveId);
                pool.Set(free.Index, null);
            }).ConfigureAwait(false);
            Log.HotplugAdded(_logger, Id, hostPath, slot.DriveId, slot.GuestDevice);
            result = new BlockHotplugResult(slot.Index, slot.DriveId, slot.GuestDevice, hostPath, ReadOnly: false);
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    /// <inheritdoc />
    public Task HotplugRemoveAsync(HypervisorDevice device, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        return LockedAsync(async ct =>
        {
            if (device is not BlockDevice block)
                throw new HypervisorNotSupportedException("Hot-unplug of " + device.GetType().Name, "Firecracker hot-plugs only block devices (through the placeholder pool)") { SandboxId = SandboxId };
            RequireState("hot-unplug a device", SandboxState.Running, SandboxState.Paused);
            var pool = _pool!;
            BlockPoolSlot? slot = block.PoolSlot is { } index && index >= 0 && index < pool.Size
                ? pool.Slots[index]
                : pool.FindByHostPath(Path.GetFullPath(block.HostPath));
            if (slot is null || slot.IsFree)
                throw new SandboxException($"No pool slot holds {block.HostPath}{(block.PoolSlot is { } s ? $" (slot {s})" : "")}.") { SandboxId = SandboxId };
            var vm = RequireVm();
            var hostPath = slot.HostPath!;
            try
            {
                await vm.UpdateDriveAsync(new PartialDrive { DriveId = slot.DriveId, PathOnHost = vm.DrivePathForVmm(slot.DriveId, slot.PlaceholderPath) }, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (UnansweredRequest.MayHaveTakenEffect(e) && !vm.Process.HasExited)
            {
                // Firecracker may have put the placeholder back: the slot keeps the file until it is asked.
                await SlotInDoubtAsync(slot.Index, e).ConfigureAwait(false);
                throw;
            }
            vm.WithdrawHotplug(slot.DriveId);
            pool.Set(slot.Index, null);
            // Found by DiskFaultTests: an unplug whose record could not be written left the record (and every other
            // driver) naming a file the VM no longer had, and a typed error claimed nothing of what happened. Undone
            // like a hot-plug: the file goes back into the slot.
            await PersistOrUndoAsync("hot-unplug", _state, async () =>
            {
                var pathForVmm = vm.ExposeForHotplug(hostPath, slot.DriveId, readOnly: false);
                await vm.UpdateDriveAsync(new PartialDrive { DriveId = slot.DriveId, PathOnHost = pathForVmm }, CancellationToken.None).ConfigureAwait(false);
                pool.Set(slot.Index, hostPath);
            }).ConfigureAwait(false);
            Log.HotplugRemoved(_logger, Id, slot.DriveId);
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// <see cref="Microvm.ResizeMemoryAsync"/> chooses the device: the virtio-mem region
    /// (<see cref="HypervisorConfig.MemoryHotplug"/>) above <see cref="HypervisorConfig.MemoryMiB"/>, the balloon
    /// (<see cref="HypervisorConfig.Balloon"/>) below it. <paramref name="requestedMiB"/> is the total guest memory
    /// wanted; <paramref name="blockSizeMiB"/> and <paramref name="probe"/> have no meaning for Firecracker (the region's
    /// own block size applies) and are ignored. The result is what the guest has once its devices settled.
    /// </remarks>
    public async Task<MemoryResizeResult> ResizeMemoryAsync(uint requestedMiB, uint blockSizeMiB, bool probe, CancellationToken cancellationToken = default)
    {
        if (Config.MemoryHotplug is null && Config.Balloon is null)
            throw new HypervisorNotSupportedException("ResizeMemory", "neither memory hot-plug (HypervisorConfig.MemoryHotplug) nor a balloon (HypervisorConfig.Balloon) is configured; without one Firecracker cannot change guest memory after boot") { SandboxId = SandboxId };
        ArgumentOutOfRangeException.ThrowIfGreaterThan(requestedMiB, (uint)int.MaxValue);
        MemoryResizeResult? result = null;
        await LockedAsync(async ct =>
        {
            RequireState("resize memory", SandboxState.Running);
            MemoryResizeOutcome outcome;
            try
            {
                outcome = await RequireVm().ResizeMemoryAsync((int)requestedMiB, ct).ConfigureAwait(false);
            }
            catch (MemoryResizeException e)
            {
                throw new SandboxConfigurationException(Config.MemoryHotplug is null ? nameof(HypervisorConfig.Balloon) : nameof(HypervisorConfig.MemoryHotplug), e.Message) { SandboxId = SandboxId };
            }
            _guestMemory = (RequireVm(), outcome.Memory.GuestMib);
            await PersistAsync(ct).ConfigureAwait(false);
            result = new MemoryResizeResult((uint)outcome.Memory.GuestMib, (uint)outcome.Memory.PluggedMib);
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    /// <summary>
    /// <see cref="Microvm.ResizeMemoryAsync"/> of the running VM, under the sandbox lock, with what the guest has then
    /// recorded (<see cref="SandboxInfo.GuestMemoryMiB"/>, <c>kiln ps</c>). Its errors are the Vm layer's, unmapped.
    /// </summary>
    /// <exception cref="SandboxStateException">The sandbox is not Running.</exception>
    public async Task<MemoryResizeOutcome> ResizeGuestMemoryAsync(int totalMiB, CancellationToken cancellationToken = default)
    {
        MemoryResizeOutcome? result = null;
        await LockedAsync(async ct =>
        {
            RequireState("resize memory", SandboxState.Running);
            var vm = RequireVm();
            result = await vm.ResizeMemoryAsync(totalMiB, ct).ConfigureAwait(false);
            _guestMemory = (vm, result.Memory.GuestMib);
            await PersistAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    /// <inheritdoc />
    public Task<VcpuResizeResult> ResizeVcpusAsync(uint requestedVcpus, CancellationToken cancellationToken = default) =>
        throw new HypervisorNotSupportedException("ResizeVcpus", "Firecracker fixes the vCPU count at boot (machine-config is pre-boot only)") { SandboxId = SandboxId };

    /// <inheritdoc />
    public void Disconnect()
    {
        // The VMM keeps running; only this driver's connection goes.
        _vm?.Disconnect();
    }

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<int, int>> GetVcpuThreadIdsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_vm is not { Process.HasExited: false } vm || !ProcFs.IsSameProcess(vm.Identity))
            throw new SandboxStateException("read vCPU threads (no VMM runs)", State, SandboxState.Running, SandboxState.Paused) { SandboxId = SandboxId };
        return Task.FromResult(vm.GetVcpuThreadIds());
    }

    /// <inheritdoc />
    public Task CleanupAsync(CancellationToken cancellationToken = default) =>
        LockedAsync(async ct =>
        {
            if (_vm is { Process.HasExited: false })
                throw new SandboxStateException("clean up while the VMM runs", State, SandboxState.Created, SandboxState.Stopped, SandboxState.Exited) { SandboxId = SandboxId };
            // A VMM that ended on its own left its network: it goes with the sandbox.
            if (Config.Network is { Mode: not Kiln.Host.Network.NetworkMode.None })
                await Networks.TearDownAsync(Id, ct).ConfigureAwait(false);
            if (Config.Jail is { } jail)
            {
                // The jail's tree, mounts and cgroups; refused (JailInUseException) if a live VMM still uses them.
                var layout = JailLayout.For(jail, Config.FirecrackerPath, InstanceId(Id));
                await JailedVmm.RemoveStaleAsync(layout, JailedVmm.CgroupDirectoriesFor(jail, layout), _time, ct).ConfigureAwait(false);
            }
            var paths = Paths;
            Microvm.DeleteFile(paths.SocketPath);
            if (_pool is not null)
            {
                foreach (var slot in _pool.Slots)
                    Microvm.DeleteFile(slot.PlaceholderPath);
            }
            Microvm.DeleteFile(paths.ConsolePath);
            Microvm.DeleteFile(paths.VmmLogPath);
            Microvm.DeleteFile(paths.PreviousVmmLogPath);
            Microvm.DeleteFile(paths.SnapshotStatePath);
            Microvm.DeleteFile(paths.SnapshotMemoryPath);
            Microvm.DeleteFile(paths.StatePath);
            try
            {
                Directory.Delete(paths.Directory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
                // Cleaned before: cleanup is idempotent.
            }
        }, cancellationToken);

    /// <summary>
    /// Owned and launched by this driver: stops the VMM (it must not outlive its owner). Detached, or re-attached from
    /// another process: only releases this driver's handles; the VMM keeps running.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            // Only the process that launched an owned VMM stops it: a driver that merely re-attached (kiln inspect,
            // say) must not kill a VMM whose owner is another process.
            if (_ownership == VmmOwnership.Owned && _vm is { LaunchedHere: true } && _paths is not null)
                await UnsafeStopAsync(Config.StopTimeout, CancellationToken.None).ConfigureAwait(false);
            else
                await ReleaseVmAsync().ConfigureAwait(false); // detached and re-attached VMMs keep running
            // A sweep the exit watcher started runs host tools: it finishes before the driver is gone (it logs its own failure).
            await _networkSweep.ConfigureAwait(false);
            await _exitRecord.ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
        _gate.Dispose();
    }

    private async Task LockedAsync(Func<CancellationToken, Task> action, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var sandboxLock = await EnterSandboxAsync(cancellationToken).ConfigureAwait(false);
            await SettleDoubtsAsync(cancellationToken).ConfigureAwait(false);
            await action(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Takes the sandbox's cross-process lock (see <see cref="SandboxLock"/>) and catches up with what other drivers
    /// did since this one last looked. Called with <see cref="_gate"/> held. Null when the sandbox directory is gone
    /// (cleaned up): there is nothing left to share, and stop and clean-up stay idempotent.
    /// </summary>
    private async Task<SandboxLock?> EnterSandboxAsync(CancellationToken cancellationToken)
    {
        var paths = Paths;
        if (!Directory.Exists(paths.Directory))
            return null;
        var sandboxLock = await SandboxLock.AcquireAsync(paths.Directory, Id, LockTimeoutFor(Config), _time, cancellationToken).ConfigureAwait(false);
        try
        {
            await RefreshAsync(cancellationToken).ConfigureAwait(false);
            return sandboxLock;
        }
        catch
        {
            sandboxLock.Dispose();
            throw;
        }
    }

    /// <summary>The longest one operation of another driver can hold the lock: a start, a stop or a snapshot.</summary>
    private static TimeSpan LockTimeoutFor(HypervisorConfig config) =>
        config.ApiReadyTimeout + config.BootTimeout + config.StopTimeout + new FirecrackerClientOptions().SnapshotTimeout;

    /// <summary>
    /// Brings this driver's view up to the state file, which every driver writes after each change: another one may
    /// have hot-plugged into the pool, paused or resumed, queued devices, stopped the VMM or started a new one.
    /// </summary>
    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var persisted = await SandboxStateFile.TryReadAsync(Paths.StatePath, cancellationToken).ConfigureAwait(false);
        if (persisted is null)
            return;
        if (persisted.Pid != _vm?.Pid || persisted.StartTimeTicks != _vm?.Identity.StartTimeTicks)
        {
            // Ours still runs, so the record cannot be newer than what this driver knows.
            if (_vm is { Process.HasExited: false })
                return;
            // Ours is gone (stopped or replaced by another driver): take the sandbox over as recorded.
            if (_vm is not null)
                await ReleaseVmAsync().ConfigureAwait(false);
            _devices.Clear();
            Adopt(persisted);
            return;
        }
        _devices.Clear();
        _devices.AddRange(persisted.Devices);
        // Another driver started a new console keeper for this VMM (its old one died): the VMM's end waits for that one.
        if (persisted.ConsoleKeeper is { } keeper && _vm is { } vm && vm.ConsoleKeeper != keeper)
            vm.ObserveConsoleKeeper(keeper);
        if (persisted.GuestMemoryMiB is { } resized && _vm is { } current)
            _guestMemory = (current, resized); // another driver (kiln mem) resized it
        AdoptSlots(persisted.PoolSlots);
        if (_state is SandboxState.Running or SandboxState.Paused && persisted.State is SandboxState.Running or SandboxState.Paused)
        {
            _state = persisted.State;
            _vm?.Observe(ToMicrovmState(persisted.State));
            if (persisted.StateInDoubt == true)
                _vm?.MarkStateInDoubt(); // another driver's pause or resume got no answer
        }
    }

    private void RequireState(string operation, params SandboxState[] expected)
    {
        _ = Id;
        var state = State;
        if (Array.IndexOf(expected, state) < 0)
            throw new SandboxStateException(operation, state, expected) { SandboxId = SandboxId };
    }

    private Microvm RequireVm() => _vm
        ?? throw new SandboxStateException("talk to the VMM (none runs)", State, SandboxState.Running, SandboxState.Paused) { SandboxId = SandboxId };

    private static MicrovmState ToMicrovmState(SandboxState state) => state switch
    {
        SandboxState.Running => MicrovmState.Running,
        SandboxState.Paused => MicrovmState.Paused,
        SandboxState.Starting => MicrovmState.Starting,
        _ => MicrovmState.Exited,
    };

    private void WatchForUnexpectedExit(Microvm vm) =>
        _ = vm.Exited.ContinueWith(t =>
        {
            if (_stopping || !ReferenceEquals(_vm, vm) || _state is not (SandboxState.Running or SandboxState.Paused))
                return;
            _state = SandboxState.Exited;
            _exit = t.Result;
            Log.VmmEnded(_logger, SandboxId ?? "?", t.Result);
            RecordExit(vm.Identity, t.Result);
            SweepNetworkAfterExit();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously | TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);

    /// <summary>
    /// From the exit watcher: the record says Exited with the status (under the sandbox lock, and only while it still
    /// names this VMM). It has no caller to throw to: a failure is logged, and readers report Exited anyway.
    /// </summary>
    private void RecordExit(ProcessIdentity identity, VmmProcessState status)
    {
        var paths = Paths;
        var id = Id;
        var timeout = LockTimeoutFor(Config);
        var previous = _exitRecord;
        _exitRecord = Task.Run(async () =>
        {
            await previous.ConfigureAwait(false);
            try
            {
                await SandboxExitRecord.MarkExitedAsync(paths, id, identity, status, wait: true, timeout, _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (SandboxException e)
            {
                Log.ExitRecordFailed(_logger, e, id);
            }
        });
    }

    private PoolSlot ToPoolSlot(BlockPoolSlot slot) =>
        new(slot.Index, slot.DriveId, slot.GuestDevice, slot.HostPath, ReadOnly: false) { InDoubt = _slotsInDoubt.Contains(slot.Index) ? true : null };

    /// <summary>
    /// Records a change the VMM has already made; when the record cannot be written (a full or read-only file system),
    /// undoes the change so that the VMM, this driver and the record (which keeps the old content) agree again, and
    /// throws the write's <see cref="SandboxException"/>. Found by DiskFaultTests: a pause on a full disk left the VM
    /// paused while the record (and every other driver) said Running.
    /// </summary>
    private async Task PersistOrUndoAsync(string operation, SandboxState before, Func<Task> undo)
    {
        try
        {
            await PersistAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (SandboxException e)
        {
            _state = before;
            Exception? undoFailure = null;
            try
            {
                await undo().ConfigureAwait(false);
            }
            catch (Exception failed)
            {
                undoFailure = failed;
            }
            var failure = new SandboxException(undoFailure is null
                ? $"The {operation} was undone: {e.Message}"
                : $"{e.Message}; undoing the {operation} failed too: {undoFailure.Message}", e) { SandboxId = SandboxId };
            // The undo's own failure is attached like every other clean-up's (CleanupFailures), never an AggregateException.
            if (undoFailure is not null)
                CleanupFailures.Attach(failure, undoFailure);
            throw failure;
        }
    }

    private async Task PersistAsync(CancellationToken cancellationToken, bool inPlaceWhenFull = false)
    {
        var vm = _vm;
        var state = new SandboxStateFile
        {
            Id = Id,
            Config = Config,
            State = State,
            Ownership = _ownership,
            Pid = vm?.Pid,
            StartTimeTicks = vm?.Identity.StartTimeTicks,
            ExecutablePath = vm?.Identity.ExecutablePath,
            VmmSpawnedNotBefore = vm is null ? _spawningSince : null,
            Jail = vm?.Jail?.Record,
            ConsoleKeeperPid = vm?.ConsoleKeeper?.Pid,
            ConsoleKeeperStartTimeTicks = vm?.ConsoleKeeper?.StartTimeTicks,
            ConsoleKeeperExecutablePath = vm?.ConsoleKeeper?.ExecutablePath,
            SocketPath = Paths.SocketPath,
            ConsolePath = Paths.ConsolePath,
            StartedAt = StartedAt,
            StateInDoubt = vm is { IsStateInDoubt: true } ? true : null,
            GuestMemoryMiB = _guestMemory is { } memory && ReferenceEquals(memory.Vm, vm) && State is SandboxState.Running or SandboxState.Paused ? memory.MiB : null,
            ExitCode = State == SandboxState.Exited ? (_exit as VmmProcessState.Exited)?.Code : null,
            ExitSignal = State == SandboxState.Exited ? (_exit as VmmProcessState.Crashed)?.Signal : null,
            PoolSlots = PoolSlots,
            Devices = [.. _devices],
        };
        await state.WriteAsync(Paths.StatePath, cancellationToken, inPlaceWhenFull).ConfigureAwait(false);
    }

    // Everything the jailer or the chroot would refuse, refused now, as the driver's own configuration errors.
    private static void ValidateJail(JailSettings jail, string sandboxId, HypervisorConfig config)
    {
        // A restored sandbox's kernel and image are a record of the template's machine (a jailed one's are paths in its
        // chroot): the restore checks the files it puts in the jail itself.
        var files = new List<string>();
        if (config.Restore is null)
        {
            files.Add(config.KernelPath);
            if (config.InitrdPath is { } initrd)
                files.Add(initrd);
            if (config.ImagePath is { } image)
                files.Add(image);
        }
        try
        {
            JailSettingsValidator.Validate(jail, InstanceId(sandboxId), config.FirecrackerPath, files);
            // The pool's placeholders are made in the sandbox directory: hard links need it on the chroot's file system.
            if (jail.FileExposure == Host.JailFileExposure.HardLink && config.BlockPoolSize > 0
                && !Host.ChrootFiles.SameFileSystem(config.RootDirectory, jail.ChrootBaseDirectory))
            {
                throw new JailConfigurationException(nameof(JailSettings.FileExposure),
                    $"is HardLink but the block pool's placeholders in {config.RootDirectory} are on another file system than {jail.ChrootBaseDirectory}; use BindMount or Copy");
            }
        }
        catch (JailConfigurationException e)
        {
            throw new SandboxConfigurationException($"{nameof(HypervisorConfig.Jail)}.{e.PropertyName}", e.Message);
        }
    }

    private static void ValidateDevice(HypervisorDevice device)
    {
        switch (device)
        {
            case BlockDevice block:
                if (string.IsNullOrWhiteSpace(block.HostPath) || !File.Exists(block.HostPath))
                    throw new SandboxConfigurationException(nameof(BlockDevice.HostPath), $"'{block.HostPath}' does not exist");
                if (block.Id is not null)
                {
                    ValidateResourceId(nameof(BlockDevice.Id), block.Id);
                    if (block.Id is RootfsDriveId || block.Id.StartsWith("drive_", StringComparison.Ordinal) || block.Id.StartsWith("disk_", StringComparison.Ordinal))
                        throw new SandboxConfigurationException(nameof(BlockDevice.Id), $"'{block.Id}' is reserved for the rootfs, the block pool and generated ids");
                }
                RateLimits.ValidateAtBoot(nameof(BlockDevice.Bandwidth), block.Bandwidth);
                RateLimits.ValidateAtBoot(nameof(BlockDevice.Ops), block.Ops);
                break;
            case NetworkDevice net:
                if (string.IsNullOrEmpty(net.TapName) || System.Text.Encoding.UTF8.GetByteCount(net.TapName) > 15)
                    throw new SandboxConfigurationException(nameof(NetworkDevice.TapName), $"'{net.TapName}' must be 1 to 15 bytes (IFNAMSIZ)");
                if (net.Id is not null)
                    ValidateResourceId(nameof(NetworkDevice.Id), net.Id);
                RateLimits.ValidateAtBoot(nameof(NetworkDevice.RxBandwidth), net.RxBandwidth);
                RateLimits.ValidateAtBoot(nameof(NetworkDevice.RxOps), net.RxOps);
                RateLimits.ValidateAtBoot(nameof(NetworkDevice.TxBandwidth), net.TxBandwidth);
                RateLimits.ValidateAtBoot(nameof(NetworkDevice.TxOps), net.TxOps);
                break;
            case VsockDevice vsock:
                if (vsock.GuestCid < 3)
                    throw new SandboxConfigurationException(nameof(VsockDevice.GuestCid), $"{vsock.GuestCid} is reserved; guest CIDs start at 3");
                if (string.IsNullOrWhiteSpace(vsock.UdsPath))
                    throw new SandboxConfigurationException(nameof(VsockDevice.UdsPath), "is empty");
                break;
            default:
                throw new HypervisorNotSupportedException(device.GetType().Name, "Firecracker supports block, network and vsock devices");
        }
    }

    private static void ValidateResourceId(string property, string id)
    {
        if (!MachineDescription.IsResourceId(id))
            throw new SandboxConfigurationException(property, $"'{id}' is not a Firecracker resource id (letters, digits and underscores only)");
    }
}
