using System.Diagnostics;
using System.Security.Cryptography;

namespace Kiln.Tests.Support;

/// <summary>
/// A network namespace of the test's own (<c>ip netns add kt-…</c>), deleted with everything in it on dispose, so
/// root-only network tests change nothing in the host's namespace. Skips the test when not root.
/// </summary>
public sealed class TestNetns : IDisposable
{
    private TestNetns(string name)
    {
        Name = name;
    }

    public string Name { get; }

    public string Path => "/run/netns/" + Name;

    public static TestNetns Create()
    {
        Assert.SkipUnless(Environment.UserName == "root" || Kiln.Interop.LibC.GetEuid() == 0, "needs root (network namespaces, TAP devices)");
        Assert.SkipUnless(Installed("ip") && Installed("nsenter"), "needs ip (iproute2) and nsenter (util-linux); .ci/run installs them");
        var netns = new TestNetns("kt-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Run("ip", "netns", "add", netns.Name);
        return netns;
    }

    public static bool Installed(string tool) => new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Any(d => File.Exists(System.IO.Path.Combine(d, tool)));

    /// <summary>Runs a command in this namespace (no shell); returns stdout or throws with stderr.</summary>
    public string Exec(params string[] args) => Run(["ip", "netns", "exec", Name, .. args]);

    public bool HasLink(string name) => Exec("ip", "-o", "link", "show").Split('\n').Any(l => l.Split(": ") is [_, var n, ..] && (n == name || n.StartsWith(name + "@", StringComparison.Ordinal)));

    public static string Run(params string[] args)
    {
        var start = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Skip(1))
            start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            p.Kill();
            throw new TimeoutException(string.Join(' ', args));
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{string.Join(' ', args)}: exit {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }

    public void Dispose()
    {
        try
        {
            Run("ip", "netns", "del", Name);
        }
        catch (InvalidOperationException)
        {
            // Already deleted by the code under test.
        }
    }
}
