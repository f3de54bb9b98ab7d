using Kiln.Host;

namespace Kiln.Sandbox;

/// <summary>Reads sandboxes from a root directory without attaching to them (for <c>kiln ps</c>/<c>inspect</c>).</summary>
public static class SandboxCatalog
{
    /// <summary>Every sandbox under <paramref name="root"/> that has a state file, ordered by id.</summary>
    /// <exception cref="SandboxException">A state file cannot be read (see <see cref="ScanAsync"/> to list the rest).</exception>
    public static async Task<IReadOnlyList<SandboxInfo>> ListAsync(string root, CancellationToken cancellationToken = default)
    {
        var scan = await ScanAsync(root, cancellationToken).ConfigureAwait(false);
        if (scan.Unreadable.Count > 0)
            throw scan.Unreadable[0].Error;
        return scan.Sandboxes;
    }

    /// <summary>
    /// Every sandbox under <paramref name="root"/> that has a state file, ordered by id, and apart from them those
    /// whose state file cannot be read (corrupt, or written by a newer Kiln): one bad record does not hide the others.
    /// </summary>
    public static async Task<SandboxScan> ScanAsync(string root, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        if (!Directory.Exists(root))
            return new SandboxScan([], []);
        var sandboxes = new List<SandboxInfo>();
        var unreadable = new List<UnreadableSandbox>();
        foreach (var dir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
        {
            var id = Path.GetFileName(dir);
            if (!SandboxIds.IsValid(id, root, out _))
                continue;
            try
            {
                var state = await SandboxStateFile.TryReadAsync(SandboxPaths.For(root, id).StatePath, cancellationToken).ConfigureAwait(false);
                if (state is not null)
                    sandboxes.Add(await NoticeAsync(root, state, cancellationToken).ConfigureAwait(false));
            }
            catch (SandboxException e)
            {
                unreadable.Add(new UnreadableSandbox(id, dir, e));
            }
        }
        return new SandboxScan(sandboxes, unreadable);
    }

    /// <summary>One sandbox; <see cref="SandboxNotFoundException"/> when it has no state under the root.</summary>
    public static async Task<SandboxInfo> GetAsync(string root, string id, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        SandboxIds.Validate(id, root);
        var state = await SandboxStateFile.TryReadAsync(SandboxPaths.For(root, id).StatePath, cancellationToken).ConfigureAwait(false)
            ?? throw new SandboxNotFoundException(id, root) { SandboxId = id };
        return await NoticeAsync(root, state, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The sandbox as it is; a record still naming a VMM that is gone is corrected on the way (SandboxExitRecord).</summary>
    private static async Task<SandboxInfo> NoticeAsync(string root, SandboxStateFile state, CancellationToken cancellationToken)
    {
        var info = ToInfo(root, state);
        if (info.State != state.State)
            await SandboxExitRecord.TryCorrectAsync(root, state, cancellationToken).ConfigureAwait(false);
        return info;
    }

    internal static SandboxInfo ToInfo(string root, SandboxStateFile state)
    {
        var live = LiveState(state);
        var keeperRuns = state.ConsoleKeeper is { } keeper && Kiln.Vmm.ConsoleKeeper.IsRunning(keeper);
        return new SandboxInfo(state.Id, SandboxPaths.For(root, state.Id).Directory, live,
            live is SandboxState.Running or SandboxState.Paused or SandboxState.Starting ? state.Pid : null,
            state.Config, state.StartedAt, state.SocketPath, state.ConsolePath, state.PoolSlots)
        {
            Ownership = state.Ownership,
            Devices = state.Devices,
            GuestMemoryMiB = live is SandboxState.Running or SandboxState.Paused ? state.GuestMemoryMiB : null,
            StateInDoubt = live is SandboxState.Running or SandboxState.Paused && state.StateInDoubt == true,
            ExitCode = live == SandboxState.Exited ? state.ExitCode : null,
            ExitSignal = live == SandboxState.Exited ? state.ExitSignal : null,
            ConsoleKeeperPid = keeperRuns ? state.ConsoleKeeper!.Pid : null,
            ConsoleKeeperDied = !keeperRuns && state.ConsoleKeeper is not null && live is SandboxState.Running or SandboxState.Paused,
        };
    }

    /// <summary>
    /// The recorded state, unless it claims a VMM that is gone (or a PID now owned by another process): then Exited.
    /// </summary>
    internal static SandboxState LiveState(SandboxStateFile state) =>
        state.State is SandboxState.Starting or SandboxState.Running or SandboxState.Paused && !IsAlive(state)
            ? SandboxState.Exited
            : state.State;

    internal static bool IsAlive(SandboxStateFile state) =>
        state.Pid is { } pid && state.StartTimeTicks is { } ticks
            ? ProcFs.IsSameProcess(new ProcessIdentity(pid, ticks, state.ExecutablePath))
            : FindUnrecordedVmm(state) is not null;

    /// <summary>
    /// The VMM of a record that says a launch began and never names the PID: its owner died between the launch and the
    /// record (found by OwnerKillTests: a detached VMM then ran on with no record naming it). Null when there is none.
    /// </summary>
    internal static ProcessIdentity? FindUnrecordedVmm(SandboxStateFile state) =>
        state is { State: SandboxState.Starting, Pid: null, VmmSpawnedNotBefore: { } since }
            ? state.Config.Jail is null
                ? Kiln.Vmm.VmmProcess.FindUnrecorded(state.Config.FirecrackerPath, state.SocketPath, since)
                : FindUnrecordedJail(state)?.Identity
            : null;

    /// <summary>
    /// As <see cref="FindUnrecordedVmm"/> for a jailed VMM, with its jail's record rebuilt (found by OwnerKillTests: a
    /// detached jailed VMM whose owner died between the launch and the record was never searched for).
    /// </summary>
    internal static Kiln.Vmm.JailRecord? FindUnrecordedJail(SandboxStateFile state) =>
        state is { State: SandboxState.Starting, Pid: null, VmmSpawnedNotBefore: { } since, Config.Jail: { } jail }
            ? Kiln.Vmm.JailedVmm.FindUnrecorded(jail,
                Kiln.Vmm.JailLayout.For(jail, state.Config.FirecrackerPath, FirecrackerHypervisor.InstanceId(state.Id)), since)
            : null;
}

/// <summary>What <see cref="SandboxCatalog.ScanAsync"/> found under a root.</summary>
/// <param name="Sandboxes">The sandboxes whose state could be read, ordered by id.</param>
/// <param name="Unreadable">The sandbox directories whose state file could not be read, ordered by id.</param>
public sealed record SandboxScan(IReadOnlyList<SandboxInfo> Sandboxes, IReadOnlyList<UnreadableSandbox> Unreadable);

/// <summary>A sandbox directory whose state file cannot be read.</summary>
/// <param name="Id">The directory's name, the sandbox id.</param>
/// <param name="Directory">The sandbox directory.</param>
/// <param name="Error">Why its state file cannot be read.</param>
public sealed record UnreadableSandbox(string Id, string Directory, SandboxException Error);
