// Bind mounts inside one VMM's private mount namespace (VmmLaunchOptions.PrivateMountNamespace). nsenter(1) enters
// the namespace and execs mount(1): two util-linux tools with an argument list, no shell, and no setns(2) from a
// multi-threaded .NET process (which would first need unshare(CLONE_FS) on a throw-away thread).
using System.Diagnostics;
using System.Globalization;

namespace Kiln.Vmm;

/// <summary>Changes the file tree one VMM sees, and no other process.</summary>
public static class MountNamespace
{
    // A bind mount is instant; a mount(1) still running after this is stuck (a hung file system under the source).
    private static readonly TimeSpan BindTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Binds <paramref name="source"/> over <paramref name="target"/> in <paramref name="vmm"/>'s mount namespace:
    /// from then on that VMM alone opens <paramref name="source"/> when it opens <paramref name="target"/>.
    /// </summary>
    /// <exception cref="IOException">The VMM has no private namespace of its own, or mount(1) failed (its message).</exception>
    public static async Task BindAsync(VmmProcess vmm, string source, string target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vmm);
        ArgumentException.ThrowIfNullOrEmpty(source);
        ArgumentException.ThrowIfNullOrEmpty(target);
        var pid = vmm.Pid.ToString(CultureInfo.InvariantCulture);
        // Binding in the host's namespace by mistake would change every process's view: refuse unless it is the VMM's own.
        if (string.Equals(ReadNamespace(pid), ReadNamespace("self"), StringComparison.Ordinal))
            throw new IOException($"firecracker (pid {pid}) shares this process's mount namespace; it was not started in a private one.");
        var nsenter = FindTool("nsenter");
        var psi = new ProcessStartInfo(nsenter) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "--target", pid, "--mount", "--", FindTool("mount"), "--bind", source, target })
            psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi) ?? throw new IOException("nsenter did not start");
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(BindTimeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new IOException($"binding {source} over {target} for firecracker (pid {pid}) did not finish within {BindTimeout.TotalSeconds:0} s");
        }
        await stdout.ConfigureAwait(false);
        if (process.ExitCode != 0)
            throw new IOException($"binding {source} over {target} for firecracker (pid {pid}) failed: {(await stderr.ConfigureAwait(false)).Trim()}");
    }

    private static string ReadNamespace(string pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget ?? "";
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static string FindTool(string name)
    {
        foreach (var dir in new[] { "/usr/bin", "/bin", "/usr/sbin", "/sbin" })
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
                return path;
        }
        throw new IOException($"{name}(1) (util-linux) was not found");
    }
}
