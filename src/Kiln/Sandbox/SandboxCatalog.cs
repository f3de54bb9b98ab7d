using Kiln.Host;

namespace Kiln.Sandbox;

/// <summary>Reads sandboxes from a root directory without attaching to them (for <c>kiln ps</c>/<c>inspect</c>).</summary>
public static class SandboxCatalog
{
    /// <summary>Every sandbox under <paramref name="root"/> that has a state file, ordered by id.</summary>
    public static async Task<IReadOnlyList<SandboxInfo>> ListAsync(string root, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        if (!Directory.Exists(root))
            return [];
        var result = new List<SandboxInfo>();
        foreach (var dir in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
        {
            var id = Path.GetFileName(dir);
            if (!SandboxIds.IsValid(id, root, out _))
                continue;
            var state = await SandboxStateFile.TryReadAsync(SandboxPaths.For(root, id).StatePath, cancellationToken).ConfigureAwait(false);
            if (state is not null)
                result.Add(ToInfo(root, state));
        }
        return result;
    }

    /// <summary>One sandbox; <see cref="SandboxNotFoundException"/> when it has no state under the root.</summary>
    public static async Task<SandboxInfo> GetAsync(string root, string id, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        SandboxIds.Validate(id, root);
        var state = await SandboxStateFile.TryReadAsync(SandboxPaths.For(root, id).StatePath, cancellationToken).ConfigureAwait(false)
            ?? throw new SandboxNotFoundException(id, root) { SandboxId = id };
        return ToInfo(root, state);
    }

    internal static SandboxInfo ToInfo(string root, SandboxStateFile state)
    {
        var live = LiveState(state);
        return new SandboxInfo(state.Id, SandboxPaths.For(root, state.Id).Directory, live,
            live is SandboxState.Running or SandboxState.Paused or SandboxState.Starting ? state.Pid : null,
            state.Config, state.StartedAt, state.SocketPath, state.ConsolePath, state.PoolSlots)
        {
            Ownership = state.Ownership,
            Devices = state.Devices,
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
        && ProcFs.IsSameProcess(new ProcessIdentity(pid, ticks, state.ExecutablePath));
}
