// Runs the tools an image build needs (mmdebstrap, mkfs.ext4, ldd, busybox) — never through a shell: every argument
// is one argv entry. Output readers are attached before the process starts; each line can be reported as progress;
// a deadline bounds every run, and a tool that overruns it or is cancelled is first asked to end (SIGTERM through a
// pidfd: mmdebstrap then unmounts what it mounted in the staging directory and removes its own files), then killed
// with everything it started (mmdebstrap runs apt and dpkg) if it has not ended within a grace period.
using System.Diagnostics;
using System.Text;

namespace Kiln.Images;

internal static class ImageTool
{
    private static readonly string[] SearchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

    private const int TailLines = 40;

    /// <summary>How long a cancelled tool may take to clean up after SIGTERM before it is killed.</summary>
    private static readonly TimeSpan TerminateGrace = TimeSpan.FromSeconds(10);

    /// <summary>The absolute path of a system tool, or null when it is not installed.</summary>
    public static string? Find(string tool) => SearchPath.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    /// <summary>The tool's path.</summary>
    /// <exception cref="ImageBuildException">It is not installed; the message names the Debian package.</exception>
    public static string Require(string step, string tool, string package) =>
        Find(tool) ?? throw new ImageBuildException(step, $"{tool} is not installed (Debian: apt-get install {package})");

    /// <summary>Runs <paramref name="executable"/> and returns its stdout.</summary>
    /// <exception cref="ImageBuildException">It exited non-zero or overran <paramref name="timeout"/>.</exception>
    public static async Task<string> RunAsync(string step, string executable, IReadOnlyList<string> args, TimeSpan timeout,
        Action<string>? onLine, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["LC_ALL"] = "C";

        using var process = new Process { StartInfo = start };
        var stdout = new StringBuilder();
        var tail = new Queue<string>();
        void Line(string? line, bool isStdout)
        {
            if (line is null)
                return;
            lock (tail)
            {
                if (isStdout)
                    stdout.AppendLine(line);
                tail.Enqueue(line);
                if (tail.Count > TailLines)
                    tail.Dequeue();
            }
            onLine?.Invoke(line);
        }
        process.OutputDataReceived += (_, e) => Line(e.Data, isStdout: true);
        process.ErrorDataReceived += (_, e) => Line(e.Data, isStdout: false);
        var display = string.Join(' ', args.Prepend(Path.GetFileName(executable)));
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ImageBuildException(step, $"'{display}' could not start: {e.Message}", innerException: e);
        }
        process.StandardInput.Close(); // no tool may wait for a terminal
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await EndAsync(process).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new ImageBuildException(step, $"'{display}' did not finish within {timeout.TotalSeconds:0} s", Tail(tail));
        }
        if (process.ExitCode != 0)
            throw new ImageBuildException(step, $"'{display}' failed with exit code {process.ExitCode}", Tail(tail));
        lock (tail)
            return stdout.ToString();
    }

    // The process is our child and not yet reaped (nothing waited for it), so its PID is still its own.
    private static async Task EndAsync(Process process)
    {
        using (var pidfd = Interop.PidFd.TryOpen(process.Id))
        {
            if (pidfd is not null && pidfd.TrySignal(15 /* SIGTERM */))
            {
                using var grace = new CancellationTokenSource(TerminateGrace);
                try
                {
                    await process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                    return;
                }
                catch (OperationCanceledException)
                {
                    // It did not end in time: killed below.
                }
            }
        }
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
    }

    private static string Tail(Queue<string> tail)
    {
        lock (tail)
            return string.Join('\n', tail);
    }
}
