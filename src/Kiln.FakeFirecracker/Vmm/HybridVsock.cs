// Firecracker's hybrid vsock, host side: a Unix socket at uds_path where the host writes `CONNECT <port>\n` and gets
// `OK <host_port>\n` when a guest process listens on that port. The pretend guest runs an echo service.
using System.Net.Sockets;
using System.Text;

namespace Kiln.FakeFirecracker.Vmm;

internal sealed class HybridVsock : IDisposable
{
    // Host-side ports count up from 2^30 for every connection Firecracker accepts, refused ones included.
    private static long s_nextHostPort = 1L << 30;
    private readonly Socket _listener;
    private readonly Task<Guest> _guest;
    private readonly CancellationTokenSource _stop = new();

    private HybridVsock(string path, Socket listener, Task<Guest> guest)
    {
        UdsPath = path;
        _listener = listener;
        _guest = guest;
        _ = AcceptLoop();
    }

    public string UdsPath { get; }

    /// <summary>Binds <paramref name="path"/> at once, as PUT /vsock does.</summary>
    /// <exception cref="IOException">The errno text Rust would print (`Address already in use (os error 98)`).</exception>
    public static HybridVsock Bind(string path, Task<Guest> guest)
    {
        if (File.Exists(path) || Directory.Exists(path))
        {
            throw new IOException(Interop.NativeMethods.OsError(98));
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(64);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            var errno = e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => 98,
                SocketError.AccessDenied => 13,
                _ => Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(path))) ? 22 : 2,
            };
            throw new IOException(Interop.NativeMethods.OsError(errno), e);
        }

        return new HybridVsock(path, socket, guest);
    }

    /// <summary>Stops listening; <paramref name="unlink"/> removes the socket file, as dropping the backend does.</summary>
    public void Close(bool unlink)
    {
        _stop.Cancel();
        _listener.Dispose();
        if (unlink)
        {
            File.Delete(UdsPath);
        }
    }

    public void Dispose() => Close(false);

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket conn;
            try
            {
                conn = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
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
                var line = await ReadLine(conn).ConfigureAwait(false);
                var parts = line?.Split(' ');
                if (parts is not ["CONNECT", var portText] || !int.TryParse(portText, out var port))
                {
                    return;
                }

                // The guest's vsock driver answers only while its vCPUs run.
                // Before InstanceStart the device is not active yet: the connection waits, as the kernel backlog would.
                var guest = await _guest.WaitAsync(_stop.Token).ConfigureAwait(false);

                await guest.WhenRunning().WaitAsync(_stop.Token).ConfigureAwait(false);
                var hostPort = Interlocked.Increment(ref s_nextHostPort) - 1;
                var agent = GuestAgentForward.Current is { } a && a.Port == port ? a : null;
                if (agent is null && !guest.VsockPorts.Contains(port))
                {
                    return;
                }

                await conn.SendAsync(Encoding.ASCII.GetBytes($"OK {hostPort}\n"), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (agent is not null)
                {
                    await agent.ForwardAsync(conn, _stop.Token).ConfigureAwait(false);
                    return;
                }

                var buffer = new byte[16384];
                while (true)
                {
                    var n = await conn.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }

                    await conn.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The peer went away or the device was replaced: the connection just ends.
            }
        }
    }

    private static async Task<string?> ReadLine(Socket conn)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (sb.Length < 64)
        {
            if (await conn.ReceiveAsync(one, SocketFlags.None).ConfigureAwait(false) == 0)
            {
                return null;
            }

            if (one[0] == '\n')
            {
                return sb.ToString();
            }

            sb.Append((char)one[0]);
        }

        return null;
    }
}
