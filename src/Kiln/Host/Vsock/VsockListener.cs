// Guest-to-host connections: when a guest connects to host CID 2 on a port, Firecracker connects to
// `<uds_path>_<port>` and the connection is the guest's (no handshake on this side). The listener owns that socket
// file: it removes a stale one left by a dead listener, refuses one a live listener holds, and removes its own on
// dispose.
using System.Globalization;
using System.Net.Sockets;
using Kiln.Api;

namespace Kiln.Host.Vsock;

/// <summary>Accepts the guest's connections to one host port of one Firecracker vsock device.</summary>
public sealed class VsockListener : IDisposable
{
    private readonly Socket _socket;
    private int _disposed;

    private VsockListener(Socket socket, string path, uint port)
    {
        _socket = socket;
        Path = path;
        Port = port;
    }

    /// <summary>The socket Firecracker connects to: <c>&lt;uds_path&gt;_&lt;port&gt;</c>.</summary>
    public string Path { get; }

    /// <summary>The host port guests connect to.</summary>
    public uint Port { get; }

    /// <summary>The listening socket's path for a vsock device and a port.</summary>
    public static string PathFor(string udsPath, uint port) => string.Create(CultureInfo.InvariantCulture, $"{udsPath}_{port}");

    /// <summary>Starts listening on <c>&lt;<paramref name="udsPath"/>&gt;_&lt;<paramref name="port"/>&gt;</c>.</summary>
    /// <exception cref="ArgumentException">The resulting path cannot be a Unix socket path.</exception>
    /// <exception cref="VsockListenException">A live listener holds the path, or it cannot be bound.</exception>
    public static VsockListener Listen(string udsPath, uint port, int backlog = 16)
    {
        ArgumentNullException.ThrowIfNull(udsPath);
        var path = PathFor(udsPath, port);
        UnixSocketPath.Validate(path, nameof(udsPath));
        RemoveIfStale(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(backlog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new VsockListenException(path, e.Message, e);
        }

        return new VsockListener(socket, path, port);
    }

    /// <summary>Waits for the next guest connection.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The listener was disposed.</exception>
    public async Task<VsockStream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var connection = await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
        return new VsockStream(connection, Port, hostPort: null);
    }

    /// <summary>Stops listening and removes the socket file; connections already accepted stay open.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _socket.Dispose();
        try
        {
            File.Delete(Path);
        }
        catch (DirectoryNotFoundException)
        {
            // Its directory went first (a jailed VM's chroot, removed at clean-up): the socket file went with it.
        }
    }

    // A socket file nobody accepts on (its listener died) only blocks bind; one that accepts is someone's.
    private static void RemoveIfStale(string path)
    {
        if (!File.Exists(path))
            return;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused)
        {
            File.Delete(path);
            return;
        }
        catch (SocketException e)
        {
            throw new VsockListenException(path, $"the file exists and is not a stale socket ({e.Message})", e);
        }

        throw new VsockListenException(path, "another listener accepts on it");
    }
}
