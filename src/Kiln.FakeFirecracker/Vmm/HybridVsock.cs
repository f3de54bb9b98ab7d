// Firecracker's hybrid vsock, host side: a Unix socket at uds_path where the host writes `CONNECT <port>\n` and gets
// `OK <host_port>\n` when a guest process listens on that port. The pretend guest runs an echo service, and a control
// service that makes it connect back to the host (`<uds_path>_<port>`) on request.
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
                var line = await ReadLine(conn, _stop.Token).ConfigureAwait(false);
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
                var control = agent is null && guest.VsockControlPort != 0 && port == guest.VsockControlPort;
                if (agent is null && !control && !guest.VsockPorts.Contains(port))
                {
                    return;
                }

                await conn.SendAsync(Encoding.ASCII.GetBytes($"OK {hostPort}\n"), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (agent is not null)
                {
                    await agent.ForwardAsync(conn, _stop.Token).ConfigureAwait(false);
                }
                else if (control)
                {
                    await Control(conn, guest).ConfigureAwait(false);
                }
                else
                {
                    await Echo(conn).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The peer went away or the device was replaced: the connection just ends.
            }
        }
    }

    private async Task Echo(Socket conn)
    {
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

    // The stand-in's control service (README: "vsock control protocol"): each `DIAL <port>\n` makes the guest connect
    // to the host on that port, as Firecracker forwards a guest connection to `<uds_path>_<port>`; the answer is `OK\n`
    // once connected (the guest then echoes on that connection) or `RST\n` when no host socket listens there.
    private async Task Control(Socket conn, Guest guest)
    {
        while (await ReadLine(conn, _stop.Token).ConfigureAwait(false) is { } line)
        {
            if (line.Split(' ') is not ["DIAL", var portText] || !uint.TryParse(portText, out var port))
            {
                await conn.SendAsync("ERR\n"u8.ToArray(), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                continue;
            }

            await guest.WhenRunning().WaitAsync(_stop.Token).ConfigureAwait(false);
            var back = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await back.ConnectAsync(new UnixDomainSocketEndPoint($"{UdsPath}_{port}"), _stop.Token).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                // Firecracker answers the guest's request with VIRTIO_VSOCK_OP_RST: the guest's connect fails.
                back.Dispose();
                await conn.SendAsync("RST\n"u8.ToArray(), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                continue;
            }

            _ = EchoAndClose(back);
            await conn.SendAsync("OK\n"u8.ToArray(), SocketFlags.None, _stop.Token).ConfigureAwait(false);
        }
    }

    private async Task EchoAndClose(Socket conn)
    {
        using (conn)
        {
            try
            {
                await Echo(conn).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The host closed its end or the device went away.
            }
        }
    }

    private static async Task<string?> ReadLine(Socket conn, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (sb.Length < 64)
        {
            if (await conn.ReceiveAsync(one, SocketFlags.None, ct).ConfigureAwait(false) == 0)
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
