// kiln-agent run as a host process for a test: its output captured from the start, killed and waited for on dispose.
using System.Diagnostics;
using System.Text;

namespace Kiln.Agent.Tests.Support;

public sealed class AgentProcess : IAsyncDisposable
{
    public static readonly string BinaryPath = Path.Combine(AppContext.BaseDirectory, "kiln-agent");

    private readonly StringBuilder _output = new();

    private AgentProcess(Process process, string socketPath)
    {
        Process = process;
        SocketPath = socketPath;
        Client = new AgentClient(Connectors.Unix(socketPath));
    }

    public string SocketPath { get; }

    public AgentClient Client { get; }

    public Process Process { get; }

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="args"/> and waits until the agent answers health.</summary>
    public static async Task<AgentProcess> StartAsync(string socketPath, string fileName, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        var process = new Process { StartInfo = info };
        var agent = new AgentProcess(process, socketPath);
        process.ErrorDataReceived += (_, e) => agent.Append(e.Data);
        process.OutputDataReceived += (_, e) => agent.Append(e.Data);
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            // Readiness races the process's exit: an agent that dies at start fails the wait at once.
            using var exited = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            var watch = process.WaitForExitAsync(exited.Token).ContinueWith(_ => exited.Cancel(), TaskScheduler.Default);
            await agent.Client.WaitUntilReadyAsync(TimeSpan.FromSeconds(30), exited.Token);
            return agent;
        }
        catch (Exception e)
        {
            await agent.DisposeAsync();
            throw new InvalidOperationException("The agent never answered:\n" + agent.Output, e);
        }
    }

    /// <summary>The agent on a Unix socket, dying with this test process.</summary>
    public static Task<AgentProcess> StartAsync(TempDir dir) =>
        StartAsync(dir["agent.sock"], BinaryPath, ["--unix", dir["agent.sock"], "--exit-with-parent"]);

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited)
            Process.Kill(entireProcessTree: true);
        await Process.WaitForExitAsync(CancellationToken.None);
        Process.Dispose();
    }
}
