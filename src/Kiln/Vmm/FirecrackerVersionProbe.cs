// `firecracker --version`, asked once per binary: the answer is cached by the binary's resolved path, modification
// time and size, so replacing the binary (an upgrade) is noticed and nothing else runs it twice. The gate refuses an
// unsupported release, and a feature that needs a newer one, before any VM is started.
using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using Kiln.Api;

namespace Kiln.Vmm;

/// <summary>Reads and checks the release of a firecracker binary.</summary>
public static class FirecrackerVersionProbe
{
    /// <summary>How long <c>firecracker --version</c> may take.</summary>
    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(10);

    private static readonly ConcurrentDictionary<(string Path, DateTime Modified, long Size), Lazy<Task<FirecrackerVersion>>> Cache = new();

    /// <summary>The binary's release, from its <c>--version</c> (run once per binary file).</summary>
    /// <exception cref="FirecrackerVersionUnknownException">It cannot be run, fails, or prints no version.</exception>
    public static async Task<FirecrackerVersion> GetVersionAsync(string executable, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(executable);
        var path = VmmProcess.ResolveExecutable(executable)
            ?? throw new FirecrackerVersionUnknownException(executable, "not found (or not a file)");
        var info = new FileInfo(path);
        var key = (path, info.LastWriteTimeUtc, info.Length);
        var lazy = Cache.GetOrAdd(key, k => new Lazy<Task<FirecrackerVersion>>(() => RunAsync(k.Path)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (FirecrackerVersionUnknownException)
        {
            // A failure is not remembered: the next call tries again (the binary may be fixed without a new mtime).
            Cache.TryRemove(new KeyValuePair<(string, DateTime, long), Lazy<Task<FirecrackerVersion>>>(key, lazy));
            throw;
        }
    }

    /// <summary>
    /// The binary's release, refused when Kiln does not support it or when it lacks one of <paramref name="features"/>.
    /// </summary>
    /// <exception cref="UnsupportedFirecrackerVersionException">Outside <see cref="SupportedFirecracker"/>'s range.</exception>
    /// <exception cref="FirecrackerFeatureUnavailableException">Too old for a feature asked for.</exception>
    /// <exception cref="FirecrackerVersionUnknownException">Its version cannot be read.</exception>
    public static async Task<FirecrackerVersion> EnsureSupportedAsync(string executable, IEnumerable<FirecrackerFeature>? features = null,
        CancellationToken cancellationToken = default)
    {
        var version = await GetVersionAsync(executable, cancellationToken).ConfigureAwait(false);
        Check(executable, version, features);
        return version;
    }

    /// <summary>The checks of <see cref="EnsureSupportedAsync"/> on a known version.</summary>
    public static void Check(string executable, FirecrackerVersion version, IEnumerable<FirecrackerFeature>? features = null)
    {
        if (!SupportedFirecracker.IsSupported(version))
            throw new UnsupportedFirecrackerVersionException(executable, version);
        foreach (var feature in features ?? [])
        {
            if (!feature.IsAvailableIn(version))
                throw new FirecrackerFeatureUnavailableException(executable, version, feature);
        }
    }

    private static async Task<FirecrackerVersion> RunAsync(string path)
    {
        var start = new ProcessStartInfo(path, "--version")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new FirecrackerVersionUnknownException(path, "it could not be started");
        }
        catch (Win32Exception e)
        {
            throw new FirecrackerVersionUnknownException(path, e.Message, e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                await process.WaitForExitAsync().WaitAsync(Timeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().ConfigureAwait(false);
                throw new FirecrackerVersionUnknownException(path, $"'--version' did not finish within {Timeout.TotalSeconds} s");
            }
            var text = await stdout.ConfigureAwait(false);
            if (process.ExitCode != 0)
                throw new FirecrackerVersionUnknownException(path, $"'--version' exited with code {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}");
            return FirecrackerVersion.TryParse(text, out var version)
                ? version
                : throw new FirecrackerVersionUnknownException(path, $"'--version' printed no version: '{text.Trim()}'");
        }
    }
}
