// Putting host files into a root directory being staged: copied (symlinks followed: the guest gets the content under
// the name asked for), permissions kept, and the agent installed as the guest's init.
namespace Kiln.Images;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal static class StagedFiles
{
    /// <summary>Copies <paramref name="source"/> to <paramref name="relativePath"/> under <paramref name="root"/>; returns its size.</summary>
    public static async Task<long> CopyAsync(string source, string root, string relativePath, CancellationToken cancellationToken)
    {
        var destination = Path.Combine(root, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
        // A link already there (Debian's /lib64/ld-linux… → /lib/…, which is absolute: it would point into the host) is
        // replaced by the file itself.
        if (new FileInfo(destination).LinkTarget is not null)
            File.Delete(destination);
        await using (var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous))
        await using (var to = new FileStream(destination, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            await from.CopyToAsync(to, 1024 * 1024, cancellationToken).ConfigureAwait(false);
        File.SetUnixFileMode(destination, File.GetUnixFileMode(source));
        return new FileInfo(destination).Length;
    }

    /// <summary>
    /// Installs the agent as <c>/sbin/kiln-agent</c> with the libraries it links, and <c>/sbin/init</c> as a link to
    /// it, so the kernel starts it without an <c>init=</c> argument. Returns the bytes written.
    /// </summary>
    public static async Task<long> InstallAgentAsync(string step, string agent, string root, CancellationToken cancellationToken)
    {
        long written = 0;
        foreach (var library in await SharedLibraries.OfAsync(step, agent, cancellationToken).ConfigureAwait(false))
        {
            // A Debian base has these already (from the same release or newer); a tiny one needs them.
            if (!File.Exists(Path.Combine(root, library.TrimStart('/'))))
                written += await CopyAsync(library, root, library.TrimStart('/'), cancellationToken).ConfigureAwait(false);
        }
        written += await CopyAsync(agent, root, "sbin/kiln-agent", cancellationToken).ConfigureAwait(false);
        File.SetUnixFileMode(Path.Combine(root, "sbin/kiln-agent"), (UnixFileMode)0b111_101_101);
        var init = Path.Combine(root, "sbin/init");
        if (File.Exists(init) || new FileInfo(init).LinkTarget is not null)
            File.Delete(init);
        File.CreateSymbolicLink(init, "kiln-agent");
        return written;
    }
}
