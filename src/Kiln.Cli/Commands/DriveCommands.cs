using System.CommandLine;
using System.Globalization;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln drive add|rm</c>: block hot-plug through the driver's placeholder pool.</summary>
internal static class DriveCommands
{
    public static Command Create(GlobalOptions globals)
    {
        var drive = new Command("drive", "Hot-plug block drives into a running VM.");
        drive.Subcommands.Add(CreateAdd(globals));
        drive.Subcommands.Add(CreateRemove(globals));
        return drive;
    }

    private static Command CreateAdd(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var path = new Argument<string>("path") { Description = "The host file backing the drive." };
        var readOnly = new Option<bool>("--ro") { Description = "Attach read-only." };
        var command = new Command("add", "Hot-plug a file as a block device; prints the pool slot and the guest device.") { name, path, readOnly };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            var hostPath = Specs.RequireFile(context.Value(path), "drive");
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            var result = await hypervisor.HotplugAddAsync(new BlockDevice(hostPath) { ReadOnly = context.Value(readOnly) }, cancellationToken);
            if (result is not BlockHotplugResult block)
                throw new CliFailureException($"the driver answered the block hot-plug with {result.GetType().Name}.");
            if (context.Json)
            {
                Output.WriteJson(
                    new DriveAddJson(id, block.Slot, block.DriveId, block.GuestDevice, block.HostPath, block.ReadOnly),
                    CliJsonContext.Default.DriveAddJson);
            }
            else
            {
                Output.WriteLine($"slot {block.Slot}: {block.GuestDevice} (drive {block.DriveId}, {(block.ReadOnly ? "ro" : "rw")})");
            }
            return ExitCodes.Success;
        });
    }

    private static Command CreateRemove(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var which = new Argument<string>("drive")
        {
            Description = "What 'kiln drive add' printed: the pool slot (0), the drive id (drive_0) or the guest device (/dev/vdb).",
        };
        which.Check(value => value is null || value.Length == 0 || value.StartsWith('-')
            ? $"expected a pool slot (0 or more), a drive id or a guest device, not '{value}'."
            : null);
        var command = new Command("rm", "Detach a hot-plugged drive; its slot returns to the pool.") { name, which };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            var reference = context.Value(which);
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            var occupant = FindSlot(hypervisor.PoolSlots, reference)
                ?? throw new CliFailureException(
                    $"sandbox '{id}' has no pool slot, drive or guest device '{reference}' ({Describe(hypervisor.PoolSlots)}).");
            var index = occupant.Index;
            if (occupant.HostPath is not { } hostPath)
                throw new CliFailureException($"pool slot {index} ({occupant.DriveId}, {occupant.GuestDevice}) of '{id}' holds no hot-plugged drive.");
            await hypervisor.HotplugRemoveAsync(new BlockDevice(hostPath) { PoolSlot = index }, cancellationToken);
            if (context.Json)
                Output.WriteJson(new DriveRemoveJson(id, index), CliJsonContext.Default.DriveRemoveJson);
            else
                Output.WriteLine($"slot {index}: {occupant.GuestDevice} detached");
            return ExitCodes.Success;
        });
    }

    /// <summary>
    /// The slot <paramref name="reference"/> names, in any form 'drive add' printed: the slot number, the drive id,
    /// or the guest device with or without its /dev/ prefix.
    /// </summary>
    internal static PoolSlot? FindSlot(IReadOnlyList<PoolSlot> slots, string reference)
    {
        if (reference.All(char.IsAsciiDigit))
            return int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                ? slots.FirstOrDefault(s => s.Index == index)
                : null;
        var device = reference.StartsWith("/dev/", StringComparison.Ordinal) ? reference : "/dev/" + reference;
        return slots.FirstOrDefault(s => s.DriveId == reference || s.GuestDevice == device);
    }

    private static string Describe(IReadOnlyList<PoolSlot> slots) => slots.Count == 0
        ? "it has no pool slots"
        : $"slots 0-{slots.Count - 1}: {slots[0].DriveId}…{slots[^1].DriveId}, {slots[0].GuestDevice}…{slots[^1].GuestDevice}";
}
