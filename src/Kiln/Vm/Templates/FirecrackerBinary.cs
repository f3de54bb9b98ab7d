// The version of a firecracker binary, from `firecracker --version` (argument list, no shell, with a deadline):
// a template loads only into the release that wrote its snapshot.
using System.Diagnostics;
using Kiln.Api;

namespace Kiln.Vm.Templates;

/// <summary>Facts about a firecracker executable.</summary>
public static class FirecrackerBinary
{
    /// <summary>Runs <c>firecracker --version</c> and parses its first line.</summary>
    /// <exception cref="IOException">It could not run, failed, or printed no version.</exception>
    /// <exception cref="TimeoutException">It did not finish within <paramref name="timeout"/>.</exception>
    public static async Task<FirecrackerVersion> GetVersionAsync(string path, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var start = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("--version");
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new IOException($"could not start {path}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new IOException($"could not start {path}: {e.Message}", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                if (cancellationToken.IsCancellationRequested)
                    throw;
                throw new TimeoutException($"'{path} --version' did not finish within {timeout.TotalSeconds:0.###} s");
            }
            var text = await stdout.ConfigureAwait(false);
            if (process.ExitCode != 0)
                throw new IOException($"'{path} --version' exited with code {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}");
            return FirecrackerVersion.TryParse(text, out var version) ? version : throw new IOException($"'{path} --version' printed no version: {text.Trim()}");
        }
    }
}
