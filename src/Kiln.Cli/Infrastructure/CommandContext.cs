using System.CommandLine;
using Kiln.Sandbox;
using Kiln.Vmm;

namespace Kiln.Cli.Infrastructure;

/// <summary>What a command's action gets: its parse result, the resolved state root and the output.</summary>
internal sealed class CommandContext(ParseResult parse, GlobalOptions globals)
{
    private string? _root;

    public ParseResult Parse { get; } = parse;

    public Output Output { get; } = new(parse.GetValue(globals.Json));

    public bool Json => Output.Json;

    public bool Verbose { get; } = parse.GetValue(globals.Verbose);

    public string Root => _root ??= StateRoot.Resolve(Parse.GetValue(globals.Root));

    public TimeProvider Time { get; } = TimeProvider.System;

    public T? Value<T>(Option<T> option) => Parse.GetValue(option);

    public T Value<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    /// <summary>
    /// How this command drives sandboxes. A detached VMM gets kiln itself as its console keeper
    /// (<c>kiln console-keeper</c>), so its console log stays bounded with no kiln command running.
    /// </summary>
    public FirecrackerHypervisorOptions HypervisorOptions(VmmOwnership ownership) => new()
    {
        Ownership = ownership,
        TimeProvider = Time,
        ConsoleKeeper = ownership == VmmOwnership.Detached ? ConsoleKeeperCommand.ForThisProgram(KilnApp.ConsoleKeeperVerb) : null,
    };
}

internal static class CommandExtensions
{
    public static Command WithAction(this Command command, GlobalOptions globals, Func<CommandContext, CancellationToken, Task<int>> action)
    {
        command.SetAction((parse, cancellationToken) => action(new CommandContext(parse, globals), cancellationToken));
        return command;
    }

    public static Argument<string> NameArgument() => new("name") { Description = "The sandbox name." };

    /// <summary>A range check that becomes a parse error (exit 2); a value that did not even convert is already one.</summary>
    public static void Check<T>(this Option<T> option, Func<T?, string?> check) =>
        option.Validators.Add(result => Validate(result.GetValueOrDefault<T>, result.AddError, check));

    /// <summary>As for an option: a range check on an argument becomes a parse error (exit 2).</summary>
    public static void Check<T>(this Argument<T> argument, Func<T?, string?> check) =>
        argument.Validators.Add(result => Validate(result.GetValueOrDefault<T>, result.AddError, check));

    private static void Validate<T>(Func<T?> read, Action<string> addError, Func<T?, string?> check)
    {
        T? value;
        try
        {
            value = read();
        }
        catch (InvalidOperationException)
        {
            return;
        }
        if (check(value) is { } error)
            addError(error);
    }
}

/// <summary>Looking sandboxes up by name, with the checks every command needs first.</summary>
internal static class Sandboxes
{
    public static bool IsLive(SandboxState state) => state is SandboxState.Starting or SandboxState.Running or SandboxState.Paused;

    /// <exception cref="UsageException">The name is not a valid sandbox id.</exception>
    public static void ValidateName(string name, string root)
    {
        if (!SandboxIds.IsValid(name, root, out var reason))
            throw new UsageException($"invalid sandbox name '{name}': {reason}");
    }

    /// <exception cref="SandboxNotFoundException">No such sandbox.</exception>
    public static Task<SandboxInfo> GetAsync(CommandContext context, string name, CancellationToken cancellationToken)
    {
        ValidateName(name, context.Root);
        return SandboxCatalog.GetAsync(context.Root, name, cancellationToken);
    }

    /// <summary>Attaches to a sandbox without taking ownership: disposing the driver leaves the VM running.</summary>
    public static Task<FirecrackerHypervisor> OpenAsync(CommandContext context, string name, CancellationToken cancellationToken)
    {
        ValidateName(name, context.Root);
        return FirecrackerHypervisor.OpenAsync(context.Root, name, context.HypervisorOptions(VmmOwnership.Detached), cancellationToken);
    }

    /// <summary>
    /// Before a command reads or attaches to a live sandbox's console: a console keeper that died (SIGKILL, the OOM
    /// killer) while its VMM runs is started again and recorded, so the log is written and bounded again. A restart
    /// that fails fails this command (typed, with the keeper's own error), rather than showing a console nobody writes.
    /// </summary>
    public static async Task RestartDeadConsoleKeeperAsync(CommandContext context, SandboxInfo info, CancellationToken cancellationToken)
    {
        // No keeper recorded, or it runs, or the sandbox is not live: nothing to restart, and no lock taken.
        if (!info.ConsoleKeeperDied)
            return;
        await using var hypervisor = await OpenAsync(context, info.Id, cancellationToken);
        if (hypervisor.State is SandboxState.Running or SandboxState.Paused)
            await hypervisor.RestartConsoleKeeperAsync(cancellationToken);
    }

    public static double? UptimeSeconds(SandboxState state, DateTimeOffset? startedAt, DateTimeOffset now) =>
        IsLive(state) && startedAt is { } started ? Math.Max(0, (now - started).TotalSeconds) : null;

    public static SandboxSummaryJson Summary(SandboxInfo info, DateTimeOffset now) => new(
        info.Id, info.State, info.Pid, info.Config.VcpuCount, info.GuestMemoryMiB ?? info.Config.MemoryMiB, info.StartedAt,
        UptimeSeconds(info.State, info.StartedAt, now));

    public static ConfigJson Config(HypervisorConfig config) => new(
        config.FirecrackerPath, config.KernelPath, config.InitrdPath, config.ImagePath, config.ImageReadOnly,
        [.. config.KernelParams.Select(p => p.ToString())], config.VcpuCount, config.MemoryMiB, config.BlockPoolSize,
        config.StopTimeout.TotalSeconds)
    {
        Restore = config.Restore is { } r
            ? new RestoreJson(r.TemplateDirectory is null ? null : Path.GetFileName(r.TemplateDirectory), r.TemplateDirectory, r.SnapshotStatePath,
                r.SnapshotMemoryPath, r.TrackDirtyPages, r.ClockRealtime, r.Resume, [.. r.Drives.Select(d => new DriveBindingJson(d.RecordedPath, d.Source, d.ReadOnly))])
            : null,
    };

    public static PoolSlotJson Slot(PoolSlot slot) => new(slot.Index, slot.DriveId, slot.GuestDevice, slot.HostPath, slot.ReadOnly, slot.InDoubt == true);

    public static DeviceJson Device(HypervisorDevice device) => device switch
    {
        BlockDevice b => new("block", b.Id, b.HostPath, b.ReadOnly, null, null, null, null),
        NetworkDevice n => new("network", n.Id, null, null, n.TapName, n.MacAddress, null, null),
        VsockDevice v => new("vsock", null, null, null, null, null, v.GuestCid, v.UdsPath),
        _ => new(device.GetType().Name, null, null, null, null, null, null, null),
    };
}
