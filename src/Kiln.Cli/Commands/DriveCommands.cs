using System.CommandLine;
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
        var slot = new Argument<int>("slot") { Description = "The pool slot printed by 'kiln drive add'." };
        slot.Check(value => value < 0 ? $"slot must be 0 or more, not {value}." : null);
        var command = new Command("rm", "Detach a hot-plugged drive; its slot returns to the pool.") { name, slot };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var id = context.Value(name);
            var index = context.Value(slot);
            await using var hypervisor = await Sandboxes.OpenAsync(context, id, cancellationToken);
            var occupant = hypervisor.PoolSlots.FirstOrDefault(s => s.Index == index)
                ?? throw new CliFailureException($"sandbox '{id}' has no pool slot {index} (slots: 0-{hypervisor.PoolSlots.Count - 1}).");
            if (occupant.HostPath is not { } hostPath)
                throw new CliFailureException($"pool slot {index} of '{id}' holds no hot-plugged drive.");
            await hypervisor.HotplugRemoveAsync(new BlockDevice(hostPath) { PoolSlot = index }, cancellationToken);
            if (context.Json)
                Output.WriteJson(new DriveRemoveJson(id, index), CliJsonContext.Default.DriveRemoveJson);
            else
                Output.WriteLine($"slot {index}: {occupant.GuestDevice} detached");
            return ExitCodes.Success;
        });
    }
}
