using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln logs</c>: the serial console file (or with <c>--vmm</c> Firecracker's own log), optionally followed until
/// Ctrl-C or the VM's end. A detached sandbox's console keeper that died is started again first, and while following
/// (checked with the VM's liveness, every quarter second).
/// </summary>
internal static class LogsCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new output until Ctrl-C or the VM exits." };
        var vmm = new Option<bool>("--vmm") { Description = "Print Firecracker's own log (firecracker.log) instead of the guest's console." };
        var command = new Command("logs", "Print a sandbox's serial console, or with --vmm Firecracker's log.") { name, follow, vmm };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var info = await Sandboxes.GetAsync(context, context.Value(name), cancellationToken);
            if (!context.Value(vmm))
                await Sandboxes.RestartDeadConsoleKeeperAsync(context, info, cancellationToken);
            using var stdout = Console.OpenStandardOutput();
            IConsoleSink sink = context.Json ? new JsonLineSink() : new RawSink(stdout);
            Func<CancellationToken, ValueTask<bool>>? stillRunning = null;
            if (context.Value(follow) && Sandboxes.IsLive(info.State))
            {
                var console = !context.Value(vmm);
                stillRunning = async ct =>
                {
                    SandboxInfo now;
                    try
                    {
                        now = await SandboxCatalog.GetAsync(context.Root, info.Id, ct);
                    }
                    catch (SandboxNotFoundException)
                    {
                        return false;
                    }
                    // A keeper that dies while we follow is started again here too: otherwise the follow would wait
                    // on a log nobody writes while the guest's output piles up unread in the keeper's FIFO.
                    if (console)
                        await Sandboxes.RestartDeadConsoleKeeperAsync(context, now, ct);
                    return Sandboxes.IsLive(now.State);
                };
            }
            var path = context.Value(vmm) ? info.VmmLogPath : info.ConsolePath;
            await ConsoleFollower.FollowAsync(path, sink, stillRunning, context.Time, cancellationToken);
            return ExitCodes.Success;
        });
    }
}
