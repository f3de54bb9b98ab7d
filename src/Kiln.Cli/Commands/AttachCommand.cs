using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Kiln.Vmm;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln attach</c>: the guest's serial console, interactively. Output from now on is printed as it comes; what is
/// typed goes to the guest's serial input (Firecracker's stdin) until the detach key, Ctrl-] (as in telnet), or the
/// VM's end. With stdin redirected, its bytes are sent as they are (a 0x1d byte detaches; end of input detaches).
/// </summary>
internal static class AttachCommand
{
    /// <summary>Ctrl-], the detach key.</summary>
    public const byte DetachByte = 0x1d;

    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var command = new Command("attach", "Attach to a sandbox's serial console (detach with Ctrl-]).") { name };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var info = await Sandboxes.GetAsync(context, context.Value(name), cancellationToken);
            if (!Sandboxes.IsLive(info.State))
                throw new CliFailureException($"{info.Id} is {info.State.ToString().ToLowerInvariant()}: there is no console to attach to.");
            if (!File.Exists(info.ConsoleInputPath))
                throw new CliFailureException($"{info.Id} has no serial input: only sandboxes started detached (kiln run --detach) can be attached to.");
            await Sandboxes.RestartDeadConsoleKeeperAsync(context, info, cancellationToken);
            using var detach = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            // Through the VM's console keeper when it has one: output straight from the VMM, input to its serial FIFO.
            await using var keeper = await ConsoleKeeper.ConnectAsync(info.ConsolePath, cancellationToken);
            if (keeper is not null)
            {
                await Console.Error.WriteLineAsync($"Attached to {info.Id}'s serial console (through its console keeper); detach with Ctrl-].");
                using var keeperOut = Console.OpenStandardOutput();
                var fromKeeper = keeper.CopyToAsync(keeperOut, detach.Token);
                var toKeeper = Task.Factory.StartNew(() => PumpInput((bytes, ct) => keeper.WriteAsync(bytes, ct), detach.Token), detach.Token,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
                await Task.WhenAny(fromKeeper, toKeeper);
                await detach.CancelAsync();
                try
                {
                    await fromKeeper;
                }
                catch (Exception e) when (e is OperationCanceledException or IOException)
                {
                    // Detached: the keeper connection ends with us.
                }
                await Console.Error.WriteLineAsync($"\r\nDetached from {info.Id}.");
                return ExitCodes.Success;
            }
            using var console = new SerialConsole(info.ConsolePath, inputPath: info.ConsoleInputPath);
            await Console.Error.WriteLineAsync($"Attached to {info.Id}'s serial console; detach with Ctrl-].");

            using var stdout = Console.OpenStandardOutput();
            var output = ConsoleFollower.FollowAsync(info.ConsolePath, new RawSink(stdout), async ct =>
            {
                try
                {
                    return Sandboxes.IsLive((await SandboxCatalog.GetAsync(context.Root, info.Id, ct)).State);
                }
                catch (SandboxNotFoundException)
                {
                    return false;
                }
            }, context.Time, detach.Token, startAtEnd: true);
            // Input blocks a thread on the terminal; it ends with the detach key, end of input, or the process.
            var input = Task.Factory.StartNew(() => PumpInput(console.WriteAsync, detach.Token), detach.Token,
                TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

            await Task.WhenAny(output, input);
            await detach.CancelAsync();
            await output;
            await Console.Error.WriteLineAsync($"\r\nDetached from {info.Id}.");
            return ExitCodes.Success;
        });
    }

    private static async Task PumpInput(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> write, CancellationToken cancellationToken)
    {
        if (Console.IsInputRedirected)
        {
            using var stdin = Console.OpenStandardInput();
            var buffer = new byte[4096];
            int read;
            while (!cancellationToken.IsCancellationRequested && (read = await stdin.ReadAsync(buffer, cancellationToken)) > 0)
            {
                var detachAt = Array.IndexOf(buffer, DetachByte, 0, read);
                await write(buffer.AsMemory(0, detachAt < 0 ? read : detachAt), cancellationToken);
                if (detachAt >= 0)
                    return;
            }
            return;
        }
        while (!cancellationToken.IsCancellationRequested)
        {
            // ReadKey puts the terminal in raw mode (no echo, no line editing): the guest echoes, as over a serial line.
            var key = Console.ReadKey(intercept: true);
            if (key.KeyChar == (char)DetachByte)
                return;
            var bytes = key.Key == ConsoleKey.Enter ? "\r"u8.ToArray() : System.Text.Encoding.UTF8.GetBytes([key.KeyChar]);
            if (key.KeyChar != '\0' || key.Key == ConsoleKey.Enter)
                await write(bytes, cancellationToken);
        }
    }
}
