using System.CommandLine;
using Kiln.Cli.Infrastructure;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln cp SRC DST</c>: copies one file between the host and a sandbox's guest; the guest side is written
/// <c>NAME:/absolute/path</c>. A destination ending in <c>/</c> (or an existing host directory) takes the source's
/// file name. Contents stream both ways, so any size works; a guest file lands atomically.
/// </summary>
internal static class CpCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var source = new Argument<string>("source") { Description = "A host path, or NAME:/path in a sandbox." };
        var destination = new Argument<string>("destination") { Description = "A host path, or NAME:/path in a sandbox." };
        var command = new Command("cp", "Copy a file between the host and a sandbox's guest.") { source, destination };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var (from, to) = (Parse(context.Value(source)), Parse(context.Value(destination)));
            long bytes;
            switch (from, to)
            {
                case ({ Sandbox: null } host, { Sandbox: { } name } guest):
                    if (!File.Exists(host.Path))
                        throw new UsageException($"'{host.Path}' is not a file.");
                    var target = guest.Path.EndsWith('/') ? guest.Path + Path.GetFileName(host.Path) : guest.Path;
                    var client = await GuestAgents.ConnectAsync(context, name, cancellationToken);
                    await using (var input = File.OpenRead(host.Path))
                    {
                        var mode = File.GetUnixFileMode(host.Path);
                        await client.Files.WriteAsync(target, input, cancellationToken, mode);
                        bytes = input.Length;
                    }

                    Report(context, host.Path, $"{name}:{target}", bytes);
                    return ExitCodes.Success;
                case ({ Sandbox: { } name } guest, { Sandbox: null } host):
                    var local = Directory.Exists(host.Path) || host.Path.EndsWith('/') ? Path.Combine(host.Path, Path.GetFileName(guest.Path)) : host.Path;
                    var agent = await GuestAgents.ConnectAsync(context, name, cancellationToken);
                    var temp = local + ".kiln-partial";
                    try
                    {
                        await using (var output = File.Create(temp))
                        {
                            var info = await agent.Files.ReadAsync(guest.Path, output, cancellationToken);
                            bytes = output.Length;
                            File.SetUnixFileMode(temp, info.Mode & (UnixFileMode)0x1FF);
                        }

                        File.Move(temp, local, overwrite: true);
                    }
                    finally
                    {
                        File.Delete(temp);
                    }

                    Report(context, $"{name}:{guest.Path}", local, bytes);
                    return ExitCodes.Success;
                default:
                    throw new UsageException("exactly one of source and destination must be in a sandbox (NAME:/path).");
            }
        });
    }

    private static void Report(CommandContext context, string from, string to, long bytes)
    {
        if (context.Json)
            Output.WriteJson(new CopyResultJson(from, to, bytes), CliJsonContext.Default.CopyResultJson);
        else
            context.Output.Note($"copied {bytes} bytes: {from} -> {to}");
    }

    // "NAME:/path" is a guest path when NAME is a plausible sandbox name; anything else (./a:b, /x:y) is a host path.
    private static (string? Sandbox, string Path) Parse(string text)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && !text[..colon].Contains('/', StringComparison.Ordinal))
        {
            var path = text[(colon + 1)..];
            if (!path.StartsWith('/'))
                throw new UsageException($"'{text}': the guest path must be absolute (NAME:/path).");
            return (text[..colon], path);
        }

        return (null, text);
    }
}
