// One Firecracker microVM as one object: it owns its VMM process and its API client and keeps one lifecycle state.
// It is made by booting a MachineDescription (Microvm.Boot.cs), or by attaching to a VMM recorded earlier; restoring
// a snapshot is the next way in. No driver concepts (sandboxes, pools, state files) live here.
using System.Diagnostics;
using Kiln.Api;
using Kiln.Host;
using Kiln.Interop;
using Kiln.Vmm;
using Microsoft.Extensions.Logging;

namespace Kiln.Vm;

/// <summary>One Firecracker microVM.</summary>
public sealed partial class Microvm : IAsyncDisposable
{
    private const int SIGHUP = 1;
    private readonly MicrovmOptions _options;
    private readonly ILogger _logger;
    private readonly VmmProcess _vmm;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private FirecrackerClient? _client;
    // Read without the gate (State): volatile so readers see the latest transition.
    private volatile MicrovmState _state;
    private int _disposed;
    private SerialConsole? _console;

    private Microvm(MicrovmOptions options, ILogger logger, VmmProcess vmm, MicrovmState state, MachineDescription? description)
    {
        _options = options;
        _logger = logger;
        _vmm = vmm;
        _state = state;
        Description = description;
        _client = options.CreateClient(logger);
    }

    /// <summary>
    /// Attaches to a VMM this or another process started earlier, proven by its recorded identity (PID, start time,
    /// executable). Null when that process is gone or the PID now belongs to another process.
    /// </summary>
    /// <param name="identity">The recorded process identity.</param>
    /// <param name="options">Its paths and timeouts (the socket path above all).</param>
    /// <param name="state">The lifecycle state last recorded for it: Running or Paused.</param>
    /// <param name="consoleKeeper">Its console keeper (<see cref="ConsoleKeeper"/>), as recorded, if it was started with one.</param>
    public static Microvm? TryAttach(ProcessIdentity identity, MicrovmOptions options, MicrovmState state, ProcessIdentity? consoleKeeper = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var vmm = VmmProcess.TryAttach(identity, options.ConsolePath, consoleKeeper);
        if (vmm is null)
            return null;
        var vm = new Microvm(options, options.CreateLogger(), vmm, state, description: null);
        vm.StartConsoleBound();
        return vm;
    }

    /// <summary>What it was booted with; null when attached.</summary>
    public MachineDescription? Description { get; }

    /// <summary>Where its files are and how its VMM runs.</summary>
    public MicrovmOptions Options => _options;

    /// <summary>The VMM process.</summary>
    public VmmProcess Process => _vmm;

    /// <summary>
    /// The guest's serial console: its output (lines or chunks, followed live across rotations) and its input (the
    /// owned VMM's stdin, or a detached one's <see cref="MicrovmOptions.ConsoleInputPath"/> FIFO).
    /// </summary>
    public SerialConsole Console => _console ??= SerialConsole.Of(_vmm,
        _options.Ownership == VmmOwnership.Detached || !_vmm.IsChild ? _options.ConsoleInputPath : null);

    /// <summary>The VMM's PID.</summary>
    public int Pid => _vmm.Pid;

    /// <summary>
    /// The console keeper writing this VM's console log (<see cref="MicrovmOptions.ConsoleKeeper"/>), for recording
    /// beside <see cref="Identity"/>; null without one.
    /// </summary>
    public ProcessIdentity? ConsoleKeeper => _vmm.ConsoleKeeper;

    /// <summary>The VMM's identity, for re-attaching later.</summary>
    public ProcessIdentity Identity => _vmm.Identity;

    /// <summary>The API client (reconnected on the next call after <see cref="Disconnect"/>).</summary>
    public FirecrackerClient Client => _client ??= _options.CreateClient(_logger);

    /// <summary>
    /// The lifecycle state: Exited the moment the VMM process is gone, not only once its exit is processed. After a
    /// pause or resume that got no answer, what was known before it (<see cref="IsStateInDoubt"/>).
    /// </summary>
    public MicrovmState State => _state is not MicrovmState.Exited && _vmm.HasExited ? MicrovmState.Exited : _state;

    /// <summary>How the VMM ended; null while it runs.</summary>
    public VmmProcessState? ExitStatus => _vmm.State.HasEnded ? _vmm.State : null;

    /// <summary>Completes when the VMM process has ended.</summary>
    public Task<VmmProcessState> Exited => _vmm.Exited;

    /// <summary>Pauses the vCPUs (PATCH /vm Paused).</summary>
    /// <exception cref="MicrovmStateException">Not Running.</exception>
    public Task PauseAsync(CancellationToken cancellationToken = default) =>
        LockedAsync("pause", "pause", [MicrovmState.Running],
            ct => ChangeRunStateAsync(Client.PauseAsync, MicrovmState.Paused, ct), cancellationToken);

    /// <summary>Runs the vCPUs again (PATCH /vm Resumed).</summary>
    /// <exception cref="MicrovmStateException">Not Paused.</exception>
    public Task ResumeAsync(CancellationToken cancellationToken = default) =>
        LockedAsync("resume", "resume", [MicrovmState.Paused],
            ct => ChangeRunStateAsync(Client.ResumeAsync, MicrovmState.Running, ct), cancellationToken);

    /// <summary>Writes a snapshot (PUT /snapshot/create); Firecracker snapshots only a paused VM, and this does not pause implicitly.</summary>
    /// <remarks>The paths are host paths, also for a jailed VM: it writes inside its chroot and the files are moved
    /// out (<see cref="CreateJailedSnapshotAsync"/>).</remarks>
    /// <exception cref="MicrovmStateException">Not Paused.</exception>
    public Task CreateSnapshotAsync(SnapshotCreateParams parameters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (_jail is { } jail)
            return LockedAsync("create a snapshot", "snapshot.create", [MicrovmState.Paused], ct => CreateJailedSnapshotAsync(jail, parameters, ct), cancellationToken);
        return LockedAsync("create a snapshot", "snapshot.create", [MicrovmState.Paused], async ct =>
        {
            var before = new[] { FileStamp.Of(parameters.SnapshotPath), FileStamp.Of(parameters.MemFilePath) };
            try
            {
                await Client.CreateSnapshotAsync(parameters, ct).ConfigureAwait(false);
            }
            catch
            {
                // Firecracker leaves what it had written of a snapshot that failed (a full disk: a truncated state
                // file, found by DiskFaultTests); a file this attempt made or changed is no snapshot, and goes. One
                // it never touched (an earlier snapshot, kept when the request was refused before writing) stays.
                if (FileStamp.Of(parameters.SnapshotPath) != before[0])
                    DeleteFile(parameters.SnapshotPath);
                if (FileStamp.Of(parameters.MemFilePath) != before[1])
                    DeleteFile(parameters.MemFilePath);
                throw;
            }
        }, cancellationToken);
    }

    /// <summary>A file's size and modification time (null: no file), to tell whether an operation wrote it.</summary>
    private sealed record FileStamp(long Length, DateTime LastWriteUtc)
    {
        public static FileStamp? Of(string? path)
        {
            if (path is null)
                return null;
            var info = new FileInfo(path);
            return info.Exists ? new FileStamp(info.Length, info.LastWriteTimeUtc) : null;
        }
    }

    /// <summary>
    /// Changes a drive after boot (PATCH /drives/{id}): a new backing file, or new rate limits (checked first; a
    /// bucket left null stays as it is, a <see cref="RateLimiterRules.Removal"/> bucket removes that limit).
    /// </summary>
    /// <exception cref="MachineDescriptionException">A bucket Firecracker would silently ignore, naming it.</exception>
    /// <exception cref="MicrovmStateException">Neither Running nor Paused.</exception>
    public Task UpdateDriveAsync(PartialDrive drive, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(drive);
        MachineDescription.CheckLimiterUpdate(nameof(PartialDrive.RateLimiter), drive.RateLimiter);
        return LockedAsync("update a drive", "drive.update", [MicrovmState.Running, MicrovmState.Paused], ct => Client.PatchGuestDriveByIDAsync(drive, ct), cancellationToken);
    }

    /// <summary>The guest's vCPU threads (vCPU index → thread id), from procfs.</summary>
    /// <exception cref="MicrovmStateException">The VMM has ended.</exception>
    public IReadOnlyDictionary<int, int> GetVcpuThreadIds()
    {
        if (_vmm.HasExited || !ProcFs.IsSameProcess(_vmm.Identity))
            throw new MicrovmStateException("read vCPU threads", MicrovmState.Exited, MicrovmState.Running, MicrovmState.Paused);
        return ProcFs.ParseVcpuThreads(ProcFs.GetThreads(_vmm.Pid));
    }

    /// <summary>
    /// Runs <paramref name="plan"/> (the options' default, SIGTERM then SIGKILL, when null) until the VMM has ended;
    /// an action that fails (the API gone, say) moves on to the next. Returns which action ended it.
    /// </summary>
    /// <exception cref="MicrovmShutdownException">The VMM outlived every action's deadline.</exception>
    public async Task<ShutdownOutcome> StopAsync(ShutdownPlan? plan = null, CancellationToken cancellationToken = default)
    {
        plan ??= _options.DefaultShutdownPlan;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await UnsafeStopAsync(plan, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<ShutdownOutcome> UnsafeStopAsync(ShutdownPlan plan, CancellationToken cancellationToken)
    {
        if (_vmm.State.HasEnded || _vmm.HasExited)
        {
            _state = MicrovmState.Exited;
            return new ShutdownOutcome(null, await _vmm.Exited.WaitAsync(cancellationToken).ConfigureAwait(false));
        }
        _state = MicrovmState.Stopping;
        var time = _options.TimeProvider;
        foreach (var action in plan.Actions)
        {
            try
            {
                if (!await SendAsync(action.Kind, cancellationToken).ConfigureAwait(false))
                {
                    // Nothing was there to signal: it ended on its own, before this action.
                    _state = MicrovmState.Exited;
                    return new ShutdownOutcome(null, await _vmm.Exited.WaitAsync(cancellationToken).ConfigureAwait(false));
                }
                VmLog.ShutdownAction(_logger, VmId, action.Kind);
            }
            catch (Exception e) when (e is FirecrackerException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                VmLog.ShutdownActionFailed(_logger, e, VmId, action.Kind);
                continue;
            }
            try
            {
                var status = await _vmm.Exited.WaitAsync(action.Timeout, time, cancellationToken).ConfigureAwait(false);
                _state = MicrovmState.Exited;
                return new ShutdownOutcome(action.Kind, status);
            }
            catch (TimeoutException)
            {
                // It outlived this action's deadline: the next action.
            }
        }
        throw new MicrovmShutdownException($"firecracker (pid {_vmm.Pid}) still runs after every action of the shutdown plan ({string.Join(", ", plan.Actions.Select(a => a.Kind))}).");
    }

    /// <summary>Does one action; false when the VMM had already ended.</summary>
    private async Task<bool> SendAsync(ShutdownActionKind kind, CancellationToken cancellationToken)
    {
        switch (kind)
        {
            case ShutdownActionKind.CtrlAltDel:
                if (_vmm.HasExited)
                    return false;
                await Client.SendCtrlAltDelAsync(cancellationToken).ConfigureAwait(false);
                return true;
            case ShutdownActionKind.Terminate:
                // A jailed VMM in its own PID namespace is that namespace's init, and the kernel drops SIGTERM there;
                // SIGHUP is the signal Firecracker ends on (exit 156).
                return _vmm.TrySignal(_jail is { Record.NewPidNamespace: true } ? SIGHUP : LibC.SIGTERM);
            case ShutdownActionKind.Kill:
                return _vmm.TrySignal(LibC.SIGKILL);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown shutdown action.");
        }
    }

    /// <summary>Closes the API connection; the VMM keeps running and the next call reconnects.</summary>
    public void Disconnect()
    {
        _client?.Dispose();
        _client = null;
    }

    /// <summary>Records a state another owner moved it to (a driver in another process paused or resumed it).</summary>
    internal void Observe(MicrovmState state)
    {
        if (_state is MicrovmState.Running or MicrovmState.Paused && state is MicrovmState.Running or MicrovmState.Paused)
            _state = state;
    }

    /// <summary>
    /// Owned and launched by this process: stops the VMM with the default plan (it must not outlive its owner).
    /// Detached, or attached: only releases this object's handles; the VMM keeps running.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            // A jailed VMM in a PID namespace is no child of ours, but the boot that launched it owns it all the same.
            if (_options.Ownership == VmmOwnership.Owned && LaunchedHere && !_vmm.State.HasEnded && !_vmm.HasExited)
                await UnsafeStopAsync(_options.DefaultShutdownPlan, CancellationToken.None).ConfigureAwait(false);
            await ReleaseAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
        _gate.Dispose();
    }

    private async Task ReleaseAsync()
    {
        await StopConsoleBoundAsync().ConfigureAwait(false);
        await StopReadersAsync().ConfigureAwait(false);
        if (_client is not null)
        {
            await _client.DisposeAsync().ConfigureAwait(false);
            _client = null;
        }
        await _vmm.DisposeAsync().ConfigureAwait(false);
        if (_jail is not null)
            await _jail.DisposeAsync().ConfigureAwait(false);
    }

    private string VmId => _options.Id ?? _vmm.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Runs one operation on the running VM: serialized with the others, refused (typed) outside
    /// <paramref name="expected"/>, and traced as the span <c>kiln.vm.</c><paramref name="span"/> (tagged with the VM's
    /// id, its status Error when it fails), which begins once the state is checked and before any request is sent.
    /// </summary>
    private async Task LockedAsync(string operation, string span, MicrovmState[] expected, Func<CancellationToken, Task> action, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SettleStateInDoubtAsync(cancellationToken).ConfigureAwait(false);
            var state = State;
            if (Array.IndexOf(expected, state) < 0)
                throw new MicrovmStateException(operation, state, expected);
            using var activity = KilnTelemetry.ActivitySource.StartActivity("kiln.vm." + span);
            activity?.SetTag("kiln.vm.id", VmId);
            try
            {
                await action(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                activity?.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
