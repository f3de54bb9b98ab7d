using System.CommandLine;
using System.Globalization;
using Kiln.Cli.Infrastructure;
using Kiln.Images;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln image build</c>: a bootable ext4 root filesystem whose init is Kiln's agent (Debian, or <c>--tiny</c>:
/// busybox + agent). On a terminal it shows each step and the bytes written; piped it prints only the image's path,
/// and with --json only the result.
/// </summary>
internal static class ImageCommands
{
    public static Command Create(GlobalOptions globals)
    {
        var command = new Command("image", "Build root filesystem images whose init is Kiln's guest agent.");
        command.Subcommands.Add(CreateBuild(globals));
        return command;
    }

    private static Command CreateBuild(GlobalOptions globals)
    {
        var name = new Argument<string?>("name") { Description = "Keep the image in the state root as NAME (for 'kiln run --image NAME'); or give --output.", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string?>("--output", "-o") { Description = "The image file to write." };
        var tiny = new Option<bool>("--tiny") { Description = "busybox and the agent only: a few MiB, built in seconds, no network." };
        var size = new Option<string?>("--size") { Description = "The image's size, e.g. 64M or 2G (default: its content plus room to work)." };
        var packages = new Option<string[]>("--package", "-p") { Description = "An extra Debian package (repeatable; not with --tiny).", DefaultValueFactory = _ => [] };
        var suite = new Option<string>("--suite") { Description = "The Debian suite.", DefaultValueFactory = _ => "bookworm" };
        var mirror = new Option<string?>("--mirror") { Description = "The Debian mirror URL (default: mmdebstrap's)." };
        var agent = new Option<string?>("--agent") { Description = "A native kiln-agent (default: $KILN_AGENT, else the one beside kiln)." };
        var busybox = new Option<string?>("--busybox") { Description = "The static busybox for --tiny (default: busybox-static's)." };
        var force = new Option<bool>("--force", "-f") { Description = "Replace the image if it exists." };
        size.Check(value => value is not null && ParseSize(value) is null ? $"--size: '{value}' is not a size such as 64M, 2G or 1073741824." : null);
        name.Check(value => value is not null && !ImageFiles.IsValidName(value) ? $"'{value}' is not an image name (letters, digits, '_', '.', '-'; at most 64)." : null);
        var build = new Command("build", "Build a root filesystem image with the agent as init.") { name, output, tiny, size, packages, suite, mirror, agent, busybox, force };
        return build.WithAction(globals, async (context, cancellationToken) =>
        {
            var givenName = context.Value(name);
            var givenOutput = context.Value(output);
            if ((givenName is null) == (givenOutput is null))
                throw new UsageException("give the image a NAME (kept in the state root) or an --output path, one of the two.");
            var path = givenOutput ?? ImageFiles.PathFor(context.Root, givenName!);
            if (givenName is not null)
                Directory.CreateDirectory(ImageFiles.Directory(context.Root));
            var spec = new ImageSpec
            {
                OutputPath = path,
                AgentPath = ImageFiles.Agent(context.Value(agent)),
                Base = context.Value(tiny) ? ImageBase.Tiny : ImageBase.Debian,
                SizeBytes = context.Value(size) is { } s ? ParseSize(s) : null,
                Packages = context.Value(packages) ?? [],
                Suite = context.Value(suite) ?? "bookworm",
                Mirror = context.Value(mirror),
                BusyboxPath = context.Value(busybox),
                Overwrite = context.Value(force),
            };
            ImageBuildResult result;
            try
            {
                result = context.Output.Interactive
                    ? await BuildShowingProgressAsync(spec, cancellationToken)
                    : await ImageBuilder.BuildAsync(spec, progress: null, cancellationToken);
            }
            catch (ImageSpecException e)
            {
                throw new UsageException(e.Message);
            }
            catch (ImageBuildException e)
            {
                throw new CliFailureException(context.Verbose && e.ToolOutput.Length > 0 ? $"{e.Message}\n{e.ToolOutput}" : e.Message);
            }

            if (context.Json)
            {
                Output.WriteJson(new ImageBuildJson(result.Path, result.Base.ToString().ToLowerInvariant(), result.SizeBytes, result.ContentBytes,
                    Math.Round(result.Elapsed.TotalSeconds, 3)), ImageJsonContext.Default.ImageBuildJson);
            }
            else
            {
                if (context.Output.Interactive)
                    Console.Error.WriteLine($"kiln: built {result.Path}: {Mib(result.ContentBytes)} in a {Mib(result.SizeBytes)} ext4 file system, {result.Elapsed.TotalSeconds:0.0} s.");
                Output.WriteLine(result.Path);
            }
            return ExitCodes.Success;
        });
    }

    // The status line names the step, the bytes written so far, and what the tool said last (mmdebstrap's I: lines).
    private static Task<ImageBuildResult> BuildShowingProgressAsync(ImageSpec spec, CancellationToken cancellationToken) =>
        AnsiConsole.Status().Spinner(Spinner.Known.Dots).StartAsync("Building image…", async status =>
        {
            var progress = new Progress<ImageBuildProgress>(p =>
            {
                var bytes = p.BytesWritten is { } b ? $" {Mib(b)}" : "";
                var detail = p.Detail is { Length: > 0 } d ? $" — {(d.Length > 70 ? d[..70] + "…" : d)}" : "";
                status.Status = Markup.Escape($"{p.Step}{bytes}{detail}");
            });
            return await ImageBuilder.BuildAsync(spec, progress, cancellationToken);
        });

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.0} MiB");

    /// <summary>Bytes, or a number with a binary K, M, G or T suffix; null when it is neither.</summary>
    internal static long? ParseSize(string text)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0)
            return null;
        var shift = char.ToUpperInvariant(trimmed[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        var digits = shift == 0 ? trimmed : trimmed[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > (long.MaxValue >> shift))
            return null;
        return value << shift;
    }
}
