using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Host.Vsock;
using Kiln.Sandbox;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln vsock NAME PORT</c>: connects to a guest's vsock port through the sandbox's vsock device and pipes stdin to
/// it and its answers to stdout (as <c>socat - UNIX-CONNECT:…</c> plus the CONNECT handshake would). The end of stdin
/// half-closes the connection; the command ends when the guest closes its side.
/// </summary>
internal static class VsockCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var port = new Argument<uint>("port") { Description = "The guest's vsock port." };
        var timeout = new Option<double>("--timeout")
        {
            Description = "Seconds to keep trying while the guest boots (default 30).",
            DefaultValueFactory = _ => 30,
        };
        timeout.Check(value => value is <= 0 or > 3600 ? "--timeout: use 0 < seconds <= 3600." : null);
        var command = new Command("vsock", "Pipe stdin/stdout through a connection to a guest's vsock port.") { name, port, timeout };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var info = await Sandboxes.GetAsync(context, context.Value(name), cancellationToken);
            var device = info.Devices.OfType<VsockDevice>().FirstOrDefault()
                ?? throw new CliFailureException($"sandbox '{info.Id}' has no vsock device (run it with --vsock CID).");
            if (!Sandboxes.IsLive(info.State))
                throw new CliFailureException($"sandbox '{info.Id}' is {info.State}; its guest cannot be reached.");
            var dialer = new VsockDialer(device.UdsPath, new VsockDialerOptions
            {
                ConnectTimeout = TimeSpan.FromSeconds(context.Value(timeout)),
                TimeProvider = context.Time,
            });
            await using var stream = await dialer.ConnectAsync(context.Value(port), cancellationToken);
            await using var stdin = Console.OpenStandardInput();
            await using var stdout = Console.OpenStandardOutput();
            var upload = Task.Run(async () =>
            {
                await stdin.CopyToAsync(stream, cancellationToken);
                stream.ShutdownWrite();
            }, cancellationToken);
            await stream.CopyToAsync(stdout, cancellationToken);
            await stdout.FlushAsync(cancellationToken);
            // The guest closed its side: whatever stdin still holds has nowhere to go.
            if (!upload.IsCompleted)
                return ExitCodes.Success;
            await upload;
            return ExitCodes.Success;
        });
    }
}
