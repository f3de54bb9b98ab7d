using System.Net.Sockets;
using System.Text;

namespace Kiln.Tests.Support;

/// <summary>Talks to a guest's vsock service through Firecracker's hybrid vsock socket (CONNECT port, then bytes).</summary>
public static class VsockProbe
{
    /// <summary>Connects to <paramref name="port"/>, sends <paramref name="text"/> and returns what comes back.</summary>
    public static async Task<string> EchoAsync(string udsPath, int port, string text, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), cancellationToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), cancellationToken);
        var ack = await ReadLineAsync(stream, cancellationToken);
        if (!ack.StartsWith("OK ", StringComparison.Ordinal))
            throw new IOException($"vsock CONNECT {port} answered '{ack}'");
        await stream.WriteAsync(Encoding.UTF8.GetBytes(text + "\n"), cancellationToken);
        return await ReadLineAsync(stream, cancellationToken);
    }

    private static async Task<string> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (await stream.ReadAsync(one, cancellationToken) == 1 && one[0] != (byte)'\n')
            bytes.Add(one[0]);
        return Encoding.UTF8.GetString([.. bytes]);
    }
}
