using System.Net.Sockets;

namespace Kiln.Host.Vsock;

/// <summary>
/// One hybrid-vsock connection: a stream over the Unix socket that owns it. <see cref="ShutdownWrite"/> tells the
/// peer that nothing more comes (EOF) while the other direction stays open.
/// </summary>
public sealed class VsockStream : NetworkStream
{
    internal VsockStream(Socket socket, uint port, uint? hostPort) : base(socket, ownsSocket: true)
    {
        Port = port;
        HostPort = hostPort;
    }

    /// <summary>The guest's vsock port.</summary>
    public uint Port { get; }

    /// <summary>The host-side port Firecracker assigned (<c>OK &lt;port&gt;</c>); null on a guest-initiated connection.</summary>
    public uint? HostPort { get; }

    /// <summary>Half-closes the connection: the peer reads end-of-stream, and can still answer.</summary>
    public void ShutdownWrite() => Socket.Shutdown(SocketShutdown.Send);
}
