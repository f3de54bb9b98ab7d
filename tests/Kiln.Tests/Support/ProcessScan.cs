namespace Kiln.Tests.Support;

public static class ProcessScan
{
    /// <summary>PIDs of live processes whose command line mentions <paramref name="text"/> (e.g. a socket path).</summary>
    public static IReadOnlyList<int> WithCommandLineContaining(string text)
    {
        var pids = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(text, StringComparison.Ordinal))
                    pids.Add(pid);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return pids;
    }
}
