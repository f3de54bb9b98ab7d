// The pretend guest's agent: with FAKE_FC_AGENT naming a kiln-agent binary, a host CONNECT to FAKE_FC_AGENT_PORT
// (default 1024) is forwarded to a real agent that the stand-in runs as a host process on a Unix socket, so host-side
// code exercises Firecracker's real hybrid-vsock path and the real agent without KVM. The agent starts on the first
// such connection, once per stand-in, and ends with it (kiln-agent --exit-with-parent, plus a kill at exit).
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace Kiln.FakeFirecracker.Vmm;

internal sealed class GuestAgentForward
{
    private static readonly Lazy<GuestAgentForward?> s_current = new(FromEnvironment);
    private readonly string _binary;
    private readonly Lazy<Task<string>> _started;

    private GuestAgentForward(string binary, int port)
    {
        _binary = binary;
        Port = port;
        _started = new Lazy<Task<string>>(StartAgentAsync);
    }

    /// <summary>The forwarder FAKE_FC_AGENT asks for, or null.</summary>
    public static GuestAgentForward? Current => s_current.Value;

    public int Port { get; }

    private static GuestAgentForward? FromEnvironment()
    {
        if (Environment.GetEnvironmentVariable("FAKE_FC_AGENT") is not { Length: > 0 } binary)
            return null;
        var port = Environment.GetEnvironmentVariable("FAKE_FC_AGENT_PORT") is { Length: > 0 } p
            ? int.Parse(p, CultureInfo.InvariantCulture)
            : 1024;
        return new GuestAgentForward(binary, port);
    }

    /// <summary>Pipes <paramref name="host"/> (past its OK line) to the agent until either side closes.</summary>
    public async Task ForwardAsync(Socket host, CancellationToken cancellationToken)
    {
        var socketPath = await _started.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        using var agent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await agent.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var up = Pump(host, agent, stop.Token);
        var down = Pump(agent, host, stop.Token);
        await Task.WhenAny(up, down).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(up, down).ConfigureAwait(false);
    }

    private static async Task Pump(Socket from, Socket to, CancellationToken cancellationToken)
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                    return;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // One side went away: the forwarded connection ends, as a vsock connection would.
        }
    }

    // Starts the agent on a socket in a fresh directory and waits until it accepts, racing its exit.
    private async Task<string> StartAgentAsync()
    {
        var dir = Directory.CreateTempSubdirectory("fcagent").FullName;
        var socketPath = Path.Combine(dir, "agent.sock");
        var info = new ProcessStartInfo(_binary) { UseShellExecute = false, RedirectStandardOutput = false, RedirectStandardError = false };
        foreach (var arg in (string[])["--unix", socketPath, "--exit-with-parent"])
            info.ArgumentList.Add(arg);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{_binary} did not start");
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                process.Kill();
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or System.ComponentModel.Win32Exception)
            {
                // Already gone; --exit-with-parent ends it in any case.
            }
        };

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"{_binary} exited with {process.ExitCode} before listening");
            try
            {
                using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await probe.ConnectAsync(new UnixDomainSocketEndPoint(socketPath)).ConfigureAwait(false);
                return socketPath;
            }
            catch (SocketException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(10).ConfigureAwait(false); // the agent binds within milliseconds; a deadline bounds it
            }
        }
    }
}
