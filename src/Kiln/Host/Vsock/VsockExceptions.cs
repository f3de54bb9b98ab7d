namespace Kiln.Host.Vsock;

/// <summary>The base of every error of Kiln's hybrid-vsock dialer and listener.</summary>
public class VsockException : Exception
{
    /// <summary>Creates the exception.</summary>
    public VsockException(string message, Exception? innerException = null) : base(message, innerException) { }
}

/// <summary>Why a host-to-guest connection could not be made.</summary>
public enum VsockConnectFailure
{
    /// <summary>Nothing listens on the vsock's Unix socket (no such file, or connection refused): Firecracker is not there (yet).</summary>
    SocketUnavailable,

    /// <summary>Firecracker closed the connection without <c>OK</c>: no guest process listens on the port (yet).</summary>
    Refused,

    /// <summary>No acknowledgement within the attempt timeout: the guest is not running (yet) or is slow.</summary>
    NoAcknowledgement,

    /// <summary>The acknowledgement was not <c>OK &lt;port&gt;\n</c>.</summary>
    BadAcknowledgement,
}

/// <summary>A host-to-guest connection that failed on its last attempt, or ran out of time retrying.</summary>
public sealed class VsockConnectException(string udsPath, uint port, VsockConnectFailure failure, int attempts, string detail, Exception? innerException = null)
    : VsockException($"vsock connect to guest port {port} through '{udsPath}' failed after {attempts} attempt(s): {failure}: {detail}", innerException)
{
    /// <summary>The vsock's Unix socket (Firecracker's <c>uds_path</c>).</summary>
    public string UdsPath { get; } = udsPath;

    /// <summary>The guest port.</summary>
    public uint Port { get; } = port;

    /// <summary>What went wrong on the last attempt.</summary>
    public VsockConnectFailure Failure { get; } = failure;

    /// <summary>How many connections were tried.</summary>
    public int Attempts { get; } = attempts;
}

/// <summary>A guest-to-host listener that could not bind its socket (in use by a live listener, or the directory is missing).</summary>
public sealed class VsockListenException(string path, string detail, Exception? innerException = null)
    : VsockException($"Cannot listen for guest connections on '{path}': {detail}", innerException)
{
    /// <summary>The socket path: <c>&lt;uds_path&gt;_&lt;port&gt;</c>.</summary>
    public string Path { get; } = path;
}
