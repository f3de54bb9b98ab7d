// The shared libraries an executable needs in the guest, as ldd names them: the dynamic loader and each library
// with the path it resolved to on this host (the same path in the guest, so the loader's default search finds it).
namespace Kiln.Images;

internal static class SharedLibraries
{
    /// <summary>The absolute paths (loader first) an executable loads; empty for a static executable.</summary>
    /// <exception cref="ImageBuildException">ldd is missing, failed, or a library is not found on this host.</exception>
    public static async Task<IReadOnlyList<string>> OfAsync(string step, string executable, CancellationToken cancellationToken)
    {
        var ldd = ImageTool.Require(step, "ldd", "libc-bin");
        string output;
        try
        {
            output = await ImageTool.RunAsync(step, ldd, [Path.GetFullPath(executable)], TimeSpan.FromSeconds(30), null, cancellationToken).ConfigureAwait(false);
        }
        catch (ImageBuildException e) when (e.ToolOutput.Contains("not a dynamic executable", StringComparison.Ordinal))
        {
            return [];
        }
        return Parse(output, executable, step);
    }

    /// <summary>Reads ldd's lines: <c>libc.so.6 => /lib/…/libc.so.6 (0x…)</c> and <c>/lib64/ld-linux-x86-64.so.2 (0x…)</c>.</summary>
    internal static IReadOnlyList<string> Parse(string lddOutput, string executable, string step)
    {
        var paths = new List<string>();
        foreach (var raw in lddOutput.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.Contains("statically linked", StringComparison.Ordinal))
                continue;
            var arrow = line.IndexOf("=>", StringComparison.Ordinal);
            var target = (arrow >= 0 ? line[(arrow + 2)..] : line).Trim();
            if (target.StartsWith("not found", StringComparison.Ordinal))
                throw new ImageBuildException(step, $"{executable} needs {line[..arrow].Trim()}, which this host does not have");
            var space = target.IndexOf(" (", StringComparison.Ordinal);
            var path = space >= 0 ? target[..space] : target;
            // linux-vdso.so.1 is the kernel's, not a file.
            if (path.StartsWith('/'))
                paths.Add(path);
        }
        // The loader (the one line without "=>") first: it is what the kernel starts.
        return [.. paths.OrderBy(p => p.Contains("ld-linux", StringComparison.Ordinal) ? 0 : 1)];
    }
}
