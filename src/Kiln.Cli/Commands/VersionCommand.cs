using System.CommandLine;
using System.Diagnostics;
using Kiln.Api;
using Kiln.Cli.Infrastructure;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln version</c>: Kiln's version and the firecracker it would use, checked against the supported range.</summary>
internal static class VersionCommand
{
    private static readonly TimeSpan VersionTimeout = TimeSpan.FromSeconds(10);

    private static string SupportedRange =>
        $"{SupportedFirecracker.Minimum} to {SupportedFirecracker.MaximumTested.Major}.{SupportedFirecracker.MaximumTested.Minor}.x";

    public static Command Create(GlobalOptions globals)
    {
        var firecracker = new Option<string?>("--firecracker") { Description = "firecracker binary to ask (default: $KILN_FIRECRACKER, else firecracker on PATH)." };
        var command = new Command("version", "Show Kiln's version and the firecracker version it would use.") { firecracker };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var report = await ProbeAsync(context.Value(firecracker), cancellationToken);
            var result = new VersionJson(Kiln.KilnInfo.Version, report);
            if (context.Json)
            {
                Output.WriteJson(result, CliJsonContext.Default.VersionJson);
                return ExitCodes.Success;
            }
            Output.WriteLine($"kiln {result.Kiln}");
            if (!report.Found)
                Output.WriteLine($"firecracker: {report.Error}");
            else if (report.Version is null)
                Output.WriteLine($"firecracker: {report.Path}: {report.Error}");
            else
                Output.MarkupLine(Markup.Escape($"firecracker {report.Version} ({report.Path}, from {report.Source}): ")
                    + (report.Supported == true ? "[green]supported[/]" : $"[red]not supported[/] (Kiln supports {Markup.Escape(report.SupportedRange ?? "?")})"));
            return ExitCodes.Success;
        });
    }

    /// <summary>Never throws for a missing or broken firecracker: the report says what went wrong.</summary>
    public static async Task<FirecrackerVersionJson> ProbeAsync(string? option, CancellationToken cancellationToken)
    {
        FirecrackerLocator.Located? located;
        try
        {
            located = FirecrackerLocator.Find(option);
        }
        catch (UsageException e)
        {
            return new FirecrackerVersionJson(false, null, null, null, null, SupportedRange, e.Message);
        }
        if (located is null)
        {
            return new FirecrackerVersionJson(false, null, null, null, null, SupportedRange,
                $"not found (pass --firecracker, set {FirecrackerLocator.EnvironmentVariable}, or put firecracker on PATH)");
        }
        var source = located.Source.ToString().ToLowerInvariant();
        try
        {
            var output = await RunVersionAsync(located.Path, cancellationToken);
            var version = FirecrackerVersion.Parse(output);
            return new FirecrackerVersionJson(true, located.Path, source, version.ToString(), SupportedFirecracker.IsSupported(version),
                SupportedRange, null);
        }
        catch (Exception e) when (e is IOException or FormatException or TimeoutException or CliFailureException
            or System.ComponentModel.Win32Exception or FirecrackerApiException)
        {
            return new FirecrackerVersionJson(true, located.Path, source, null, null, SupportedRange, e.Message);
        }
    }

    private static async Task<string> RunVersionAsync(string path, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(path, "--version")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new CliFailureException($"could not start {path}");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(VersionTimeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{path} --version' did not finish within {VersionTimeout.TotalSeconds} s.");
        }
        var text = await stdout;
        if (process.ExitCode != 0)
            throw new CliFailureException($"'{path} --version' exited with code {process.ExitCode}: {(await stderr).Trim()}");
        return text;
    }
}
