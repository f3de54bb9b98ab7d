// `dotnet publish src/Kiln.Cli` is how a user gets a kiln to put on PATH: the published directory must hold `kiln`
// (not `Kiln.Cli`) with the stand-in beside it. Framework-dependent, without and with a runtime identifier (then
// ReadyToRun) always; native AOT (minutes of ILCompiler) when KILN_TEST_PUBLISH_AOT=1.
using System.Diagnostics;
using System.Text;

namespace Kiln.Cli.Tests;

public sealed class PublishTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-pub").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("framework")]
    [InlineData("ready-to-run")]
    [InlineData("aot")]
    public async Task Publish_leaves_the_command_as_kiln_with_the_stand_in_beside_it(string mode)
    {
        Assert.SkipWhen(mode == "aot" && Environment.GetEnvironmentVariable("KILN_TEST_PUBLISH_AOT") != "1",
            "native AOT publish takes minutes: set KILN_TEST_PUBLISH_AOT=1 to run it");
        var output = Path.Combine(_dir, "out");
        string[] extra = mode switch
        {
            "aot" => ["-r", "linux-x64", "-p:PublishAot=true"],
            "ready-to-run" => ["-r", "linux-x64", "--self-contained", "false"],
            _ => [],
        };

        var (exitCode, log) = await RunAsync(Dotnet(),
            ["publish", Path.Combine(RepositoryRoot(), "src", "Kiln.Cli"), "-c", "Release", .. extra, "-o", output,
             "-nodeReuse:false", "--disable-build-servers"]);

        Assert.True(exitCode == 0, log);
        Assert.True(File.Exists(Path.Combine(output, "kiln")), string.Join('\n', Directory.GetFiles(output)));
        Assert.False(File.Exists(Path.Combine(output, "Kiln.Cli")), "the executable is renamed to kiln, not copied");
        Assert.True(File.Exists(Path.Combine(output, "fake-firecracker")));
        var (versionExit, version) = await RunAsync(Path.Combine(output, "kiln"), ["version"]);
        Assert.True(versionExit == 0, version);
        Assert.Contains($"kiln {Kiln.KilnInfo.Version}", version);
        if (mode != "aot")
        {
            // Published for a runtime, kiln is precompiled (its one-shot commands then spend little in the JIT);
            // without one it stays IL.
            Assert.Equal(mode == "ready-to-run", IsReadyToRun(Path.Combine(output, "Kiln.Cli.dll")));
            Assert.Equal(mode == "ready-to-run", IsReadyToRun(Path.Combine(output, "Kiln.dll")));
        }
    }

    /// <summary>Whether the assembly carries ReadyToRun code (a managed native header, which IL-only images lack).</summary>
    private static bool IsReadyToRun(string assembly)
    {
        using var pe = new System.Reflection.PortableExecutable.PEReader(File.OpenRead(assembly));
        return pe.PEHeaders.CorHeader is { ManagedNativeHeaderDirectory.Size: > 0 };
    }

    private static string Dotnet() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kiln.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no Kiln.slnx above {AppContext.BaseDirectory}");
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        // No MSBuild or compiler server may outlive the test.
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["UseSharedCompilation"] = "false";
        start.Environment.Remove("KILN_FIRECRACKER");
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromMinutes(15));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        lock (output)
            return (process.ExitCode, output.ToString());
    }
}
