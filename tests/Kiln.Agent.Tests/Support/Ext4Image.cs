// Reads an ext4 image without mounting it, through e2fsprogs' debugfs (read-only by default) and e2fsck -n.
using System.Diagnostics;
using System.Text;

namespace Kiln.Agent.Tests.Support;

public sealed record Ext4Entry(string Name, int Mode, int Uid, int Gid, long Size);

public static class Ext4Image
{
    /// <summary>Skips the test when e2fsprogs is missing (.ci/run installs it).</summary>
    public static void RequireTools() =>
        Assert.SkipUnless(File.Exists("/usr/sbin/debugfs") || File.Exists("/sbin/debugfs"), "e2fsprogs' debugfs is not installed (apt-get install e2fsprogs)");

    /// <summary>The entries of <paramref name="directory"/> in the image (debugfs <c>ls -p</c>: /inode/mode/uid/gid/name/size/).</summary>
    public static async Task<IReadOnlyList<Ext4Entry>> ListAsync(string image, string directory)
    {
        var output = await DebugfsAsync(image, $"ls -p {directory}");
        var entries = new List<Ext4Entry>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split('/');
            if (fields.Length < 7 || fields[5] is "." or "..")
                continue;
            entries.Add(new Ext4Entry(fields[5], Convert.ToInt32(fields[2], 8), int.Parse(fields[3]), int.Parse(fields[4]),
                fields[6].Length == 0 ? 0 : long.Parse(fields[6])));
        }
        return entries;
    }

    /// <summary>The target of a symbolic link in the image.</summary>
    public static async Task<string> LinkTargetAsync(string image, string path)
    {
        var stat = await DebugfsAsync(image, $"stat {path}");
        var marker = "Fast link dest: \"";
        var at = stat.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(at >= 0, $"{path} is not a symbolic link:\n{stat}");
        var start = at + marker.Length;
        return stat[start..stat.IndexOf('"', start)];
    }

    /// <summary>Copies a file out of the image.</summary>
    public static Task DumpAsync(string image, string path, string destination) => DebugfsAsync(image, $"dump {path} {destination}");

    /// <summary>Copies the whole tree out of the image, links and modes kept.</summary>
    public static Task ExtractAsync(string image, string destination) => DebugfsAsync(image, $"rdump / {destination}");

    /// <summary>The file system's volume label.</summary>
    public static async Task<string> LabelAsync(string image)
    {
        var (_, output) = await RunAsync("/sbin/e2label", [image]);
        return output.Trim();
    }

    /// <summary>e2fsck's forced read-only check: exit code 0 means a clean file system.</summary>
    public static Task<(int ExitCode, string Output)> CheckAsync(string image) => RunAsync("/sbin/e2fsck", ["-f", "-n", image]);

    private static async Task<string> DebugfsAsync(string image, string request)
    {
        var (exitCode, output) = await RunAsync("/sbin/debugfs", ["-R", request, image]);
        Assert.True(exitCode == 0, $"debugfs -R '{request}' failed:\n{output}");
        return output;
    }

    public static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = new Process { StartInfo = start };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }
        lock (stdout)
            lock (stderr)
                return (process.ExitCode, stdout.ToString() + stderr);
    }
}
