// A minimal in-process stand-in for Firecracker's hybrid vsock with a guest echo service behind it: reads
// `CONNECT <port>\n`, answers `OK <n>\n`, then echoes. The dialer and its floor talk to this same socket.
using System.Net.Sockets;
using System.Text;

namespace Kiln.Benchmarks;

internal sealed class HybridVsockEchoServer : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private long _nextHostPort = 1L << 30;

    public HybridVsockEchoServer(string path)
    {
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        _listener.Listen(64);
        _ = AcceptLoop();
    }

    private async Task AcceptLoop()
    {
        while (true)
        {
            Socket conn;
            try
            {
                conn = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Serve(conn);
        }
    }

    private async Task Serve(Socket conn)
    {
        using (conn)
        {
            try
            {
                var one = new byte[1];
                while (await conn.ReceiveAsync(one, SocketFlags.None, _stop.Token) == 1 && one[0] != '\n')
                {
                }
                var ok = Encoding.ASCII.GetBytes($"OK {Interlocked.Increment(ref _nextHostPort) - 1}\n");
                await conn.SendAsync(ok, SocketFlags.None, _stop.Token);
                var buffer = new byte[64 * 1024];
                int n;
                while ((n = await conn.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
                    await conn.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        _stop.Dispose();
    }
}
