// The tiny base: a root directory with a static busybox (its applets as symlinks: sh, ls, cat, …), the agent as
// /sbin/init with the libraries it links, and the few files a shell and the agent's user look-up read.
namespace Kiln.Images;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal static class TinyRoot
{
    public const string Step = "stage";

    private static readonly string[] Directories =
        ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "tmp", "root", "var/tmp", "work"];

    /// <summary>Fills <paramref name="root"/> (empty) and returns the bytes written.</summary>
    public static async Task<long> StageAsync(ImageSpec spec, string root, IProgress<ImageBuildProgress>? progress, CancellationToken cancellationToken)
    {
        var busybox = spec.BusyboxPath ?? ImageTool.Require(Step, "busybox", "busybox-static");
        foreach (var directory in Directories)
            Directory.CreateDirectory(Path.Combine(root, directory));
        File.SetUnixFileMode(Path.Combine(root, "tmp"), (UnixFileMode)0b1_111_111_111); // 1777, as every /tmp
        File.SetUnixFileMode(Path.Combine(root, "var/tmp"), (UnixFileMode)0b1_111_111_111);
        File.SetUnixFileMode(Path.Combine(root, "root"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        long written = 0;
        void Report(long bytes, string what)
        {
            written += bytes;
            progress?.Report(new ImageBuildProgress(Step, written, what));
        }

        Report(await StagedFiles.CopyAsync(busybox, root, "bin/busybox", cancellationToken).ConfigureAwait(false), "/bin/busybox");
        var applets = await ImageTool.RunAsync(Step, busybox, ["--list-full"], TimeSpan.FromSeconds(30), null, cancellationToken).ConfigureAwait(false);
        foreach (var applet in applets.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // init is the agent; linuxrc is busybox's initrd init. Anything odd (absolute, ..) is skipped, not trusted.
            if (applet is "sbin/init" or "linuxrc" || applet.StartsWith('/') || applet.Contains("..", StringComparison.Ordinal))
                continue;
            var link = Path.Combine(root, applet);
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            if (!File.Exists(link))
                File.CreateSymbolicLink(link, "/bin/busybox");
        }

        // A static busybox needs nothing; a dynamic one (a host's own busybox given by path) gets its libraries.
        foreach (var library in await SharedLibraries.OfAsync(Step, busybox, cancellationToken).ConfigureAwait(false))
            Report(await StagedFiles.CopyAsync(library, root, library.TrimStart('/'), cancellationToken).ConfigureAwait(false), library);

        await File.WriteAllTextAsync(Path.Combine(root, "etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n", cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(root, "etc/hostname"), "kiln\n", cancellationToken).ConfigureAwait(false);
        return written;
    }
}
