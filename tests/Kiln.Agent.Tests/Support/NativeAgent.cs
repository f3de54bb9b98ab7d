// The agent a guest image needs is the native (AOT) build; the tests' own kiln-agent is framework-dependent (an
// apphost beside kiln-agent.dll). .ci/run publishes the native one once and names it in KILN_TEST_AGENT.
namespace Kiln.Agent.Tests.Support;

public static class NativeAgent
{
    /// <summary>KILN_TEST_AGENT when it names a file; otherwise null and why.</summary>
    public static string? Find(out string skipReason)
    {
        var path = Environment.GetEnvironmentVariable("KILN_TEST_AGENT");
        skipReason = path is null or ""
            ? "no native agent: set KILN_TEST_AGENT to `dotnet publish src/Kiln.Agent -c Release -r linux-x64`'s kiln-agent (.ci/run does)"
            : File.Exists(path) ? "" : $"KILN_TEST_AGENT={path} does not exist";
        return skipReason.Length == 0 ? Path.GetFullPath(path!) : null;
    }

    /// <summary>The native agent; skips the test with the reason when there is none.</summary>
    public static string Require()
    {
        var path = Find(out var reason);
        Assert.SkipWhen(path is null, reason);
        return path!;
    }

    /// <summary>
    /// An agent to put into an image whose contents a test only reads: the native one when given, else the
    /// framework-dependent apphost copied alone into <paramref name="dir"/> (an ELF that links glibc, as the native one does).
    /// </summary>
    public static string ForContents(TempDir dir)
    {
        if (Find(out _) is { } native)
            return native;
        var copy = dir["agent-bin/kiln-agent"];
        Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
        File.Copy(AgentProcess.BinaryPath, copy);
        return copy;
    }
}
