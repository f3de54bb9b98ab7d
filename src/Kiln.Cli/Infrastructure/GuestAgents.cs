// Reaching a sandbox's guest agent: its vsock device (kiln run --vsock CID) is the way in, and the agent listens on
// vsock port 1024. The hybrid-vsock handshake here is the minimal one (CONNECT port / OK host-port); it gives way to
// Kiln's own dialer (Host/Vsock) once that is on main.
using System.Net.Sockets;
using System.Text;
using Kiln.Agent;
using Kiln.Sandbox;

namespace Kiln.Cli.Infrastructure;

internal static class GuestAgents
{
    /// <summary>A client for the agent of sandbox <paramref name="name"/>, once the agent answers its health call.</summary>
    /// <exception cref="CliFailureException">The sandbox is not running, has no vsock, or its agent never answered.</exception>
    public static async Task<AgentClient> ConnectAsync(CommandContext context, string name, CancellationToken cancellationToken)
    {
        var info = await Sandboxes.GetAsync(context, name, cancellationToken);
        if (info.State != SandboxState.Running)
            throw new CliFailureException($"sandbox '{name}' is {info.State.ToString().ToLowerInvariant()}, not running.");
        var vsock = info.Devices.OfType<VsockDevice>().FirstOrDefault()
            ?? throw new CliFailureException($"sandbox '{name}' has no vsock device: start it with 'kiln run --vsock 3' to reach its agent.");
        var client = new AgentClient(HybridVsock(vsock.UdsPath, AgentClient.DefaultPort), context.Time);
        try
        {
            await client.WaitUntilReadyAsync(TimeSpan.FromSeconds(30), cancellationToken);
        }
        catch (TimeoutException e)
        {
            throw new CliFailureException($"the guest agent of '{name}' did not answer: {e.InnerException?.Message ?? e.Message}");
        }

        return client;
    }

    private static AgentConnector HybridVsock(string udsPath, int port) => async cancellationToken =>
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), cancellationToken);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, cancellationToken);
            var line = new StringBuilder();
            var one = new byte[1];
            while (true)
            {
                if (await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken) == 0)
                    throw new IOException($"nothing in the guest listens on vsock port {port} (yet).");
                if (one[0] == '\n')
                    break;
                if (line.Length >= 32)
                    throw new IOException("the vsock device's acknowledgement is malformed.");
                line.Append((char)one[0]);
            }

            if (!line.ToString().StartsWith("OK ", StringComparison.Ordinal))
                throw new IOException($"the vsock device answered '{line}' instead of OK.");
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    };
}
