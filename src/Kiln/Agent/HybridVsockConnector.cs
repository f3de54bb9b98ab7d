// The minimal host side of Firecracker's hybrid vsock for the agent: connect to the device's uds_path, write
// `CONNECT <port>\n`, expect `OK <host port>\n`, and the stream is the guest's. Interim: Kiln's own dialer
// (Host/Vsock, with retries and typed errors) replaces it once it is on main.
using System.Net.Sockets;
using System.Text;

namespace Kiln.Agent;

internal static class HybridVsockConnector
{
    public static AgentConnector Create(string udsPath, int port) => async cancellationToken =>
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), cancellationToken).ConfigureAwait(false);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            var line = new StringBuilder();
            var one = new byte[1];
            while (true)
            {
                if (await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken).ConfigureAwait(false) == 0)
                    throw new IOException($"Nothing in the guest listens on vsock port {port} (yet).");
                if (one[0] == '\n')
                    break;
                if (line.Length >= 32)
                    throw new IOException("The vsock device's acknowledgement is malformed.");
                line.Append((char)one[0]);
            }

            if (!line.ToString().StartsWith("OK ", StringComparison.Ordinal))
                throw new IOException($"The vsock device answered '{line}' instead of OK.");
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    };
}
