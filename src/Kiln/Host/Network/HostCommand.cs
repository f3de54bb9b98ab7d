// Runs iproute2's `ip`, `nft` and util-linux's `nsenter` — never through a shell: every argument is one argv entry,
// and every name that reaches one was validated first (InterfaceName, absolute paths). Output readers are attached
// before the process starts; a deadline bounds every run, and a tool that overruns it (or is cancelled) is killed.
using System.Diagnostics;
using System.Text;

namespace Kiln.Host.Network;

internal static class HostCommand
{
    private static readonly string[] SearchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

    public static TimeSpan DefaultTimeout { get; } = TimeSpan.FromSeconds(30);

    /// <summary>The absolute path of a system tool, or null when it is not installed.</summary>
    public static string? Find(string tool) =>
        SearchPath.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    /// <summary>The span each run is (<c>kiln.host.command</c>): one per <c>ip</c>, <c>nft</c> or <c>sysctl</c> a sandbox network costs.</summary>
    public const string SpanName = "kiln.host.command";

    /// <summary>Runs <paramref name="tool"/>; inside the network namespace at <paramref name="netns"/> when given (via nsenter).</summary>
    /// <returns>The tool's stdout.</returns>
    /// <exception cref="HostCommandException">The tool is missing, exited non-zero, or overran the deadline.</exception>
    public static async Task<string> RunAsync(string tool, IReadOnlyList<string> args, string? netns, CancellationToken cancellationToken, string? stdin = null)
    {
        // A trace shows each host change a network set-up or teardown made, with the namespace it was made in; the tags
        // are set before the span starts, so a listener sees which command is about to run.
        using var activity = KilnTelemetry.ActivitySource.StartActivity(SpanName, ActivityKind.Internal, parentContext: default,
            tags: [new("kiln.host.command.line", string.Join(' ', args.Prepend(tool))), new("kiln.host.command.netns", netns)]);
        try
        {
            return await RunUntracedAsync(tool, args, netns, stdin, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
    }

    private static async Task<string> RunUntracedAsync(string tool, IReadOnlyList<string> args, string? netns, string? stdin, CancellationToken cancellationToken)
    {
        var toolPath = Find(tool) ?? throw new HostCommandException(tool, 127, $"{tool} is not installed (Debian: apt-get install {(tool == "nft" ? "nftables" : tool == "nsenter" ? "util-linux" : "iproute2")})");
        var argv = new List<string>();
        string executable;
        if (netns is null)
        {
            executable = toolPath;
        }
        else
        {
            executable = Find("nsenter") ?? throw new HostCommandException("nsenter", 127, "nsenter is not installed (Debian: apt-get install util-linux)");
            argv.Add("--net=" + netns);
            argv.Add("--");
            argv.Add(toolPath);
        }
        argv.AddRange(args);
        var display = string.Join(' ', argv.Prepend(Path.GetFileName(executable)));

        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in argv)
            start.ArgumentList.Add(a);
        // Tools print messages in the C locale, so callers can rely on the texts.
        start.Environment["LC_ALL"] = "C";

        using var process = new Process { StartInfo = start };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(DefaultTimeout);
        try
        {
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin.AsMemory(), deadline.Token).ConfigureAwait(false);
                process.StandardInput.Close();
            }
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new HostCommandException(display, -1, $"did not finish within {DefaultTimeout.TotalSeconds:0} s");
        }
        // WaitForExitAsync returns after the output streams reached EOF, so both builders are complete.
        if (process.ExitCode != 0)
        {
            lock (stderr)
                throw new HostCommandException(display, process.ExitCode, stderr.ToString());
        }
        lock (stdout)
            return stdout.ToString();
    }
}
