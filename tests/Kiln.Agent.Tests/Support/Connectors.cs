using System.Net.Sockets;
using System.Text;

namespace Kiln.Agent.Tests.Support;

public static class Connectors
{
    /// <summary>Straight to an agent's Unix socket.</summary>
    public static AgentConnector Unix(string path) => async ct =>
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    };

    /// <summary>
    /// A minimal hybrid-vsock dialer (CONNECT port / OK host-port over Firecracker's vsock Unix socket), for these tests
    /// only until Kiln's own dialer lands.
    /// </summary>
    public static AgentConnector HybridVsock(string udsPath, int port) => async ct =>
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), ct);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, ct);
            var line = new StringBuilder();
            var one = new byte[1];
            while (true)
            {
                if (await socket.ReceiveAsync(one, SocketFlags.None, ct) == 0)
                    throw new IOException($"The vsock device refused CONNECT {port}.");
                if (one[0] == '\n')
                    break;
                line.Append((char)one[0]);
                if (line.Length > 64)
                    throw new IOException("The vsock device's answer is too long.");
            }

            if (!line.ToString().StartsWith("OK ", StringComparison.Ordinal))
                throw new IOException($"The vsock device answered '{line}'.");
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    };
}
