// One exception type per way a call to Firecracker's API can fail, so callers can catch what they can act on.
namespace Kiln.Api;

/// <summary>Base of every failure talking to a Firecracker API socket.</summary>
public class FirecrackerException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an operation on a socket.</summary>
    public FirecrackerException(string message, string? socketPath, string? operation, Exception? innerException = null)
        : base(message, innerException)
    {
        SocketPath = socketPath;
        Operation = operation;
    }

    /// <summary>The API socket the call went to.</summary>
    public string? SocketPath { get; }

    /// <summary>The operation: its operationId, method and path, e.g. <c>putGuestDriveByID PUT /drives/rootfs</c>.</summary>
    public string? Operation { get; }
}

/// <summary>Firecracker answered with a 4xx or 5xx status; <see cref="FaultMessage"/> says why.</summary>
public sealed class FirecrackerApiException : FirecrackerException
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerApiException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerApiException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerApiException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an answer.</summary>
    public FirecrackerApiException(string message, string? socketPath, string? operation, int statusCode, string? faultMessage)
        : base(message, socketPath, operation)
    {
        StatusCode = statusCode;
        FaultMessage = faultMessage;
    }

    /// <summary>The HTTP status code, e.g. 400.</summary>
    public int StatusCode { get; }

    /// <summary>
    /// Firecracker's <c>fault_message</c> (or the <c>error</c> of the body it sends for unparseable requests);
    /// null when the body had neither.
    /// </summary>
    public string? FaultMessage { get; }
}

/// <summary>The connection to the API socket could not be made or broke; base of the specific cases.</summary>
public class FirecrackerConnectionException : FirecrackerException
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerConnectionException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an operation on a socket.</summary>
    public FirecrackerConnectionException(string message, string? socketPath, string? operation, Exception? innerException = null)
        : base(message, socketPath, operation, innerException)
    {
    }
}

/// <summary>No socket file exists at the path: Firecracker has not started yet, or has gone and cleaned up.</summary>
public sealed class FirecrackerSocketNotFoundException : FirecrackerConnectionException
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerSocketNotFoundException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerSocketNotFoundException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerSocketNotFoundException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an operation on a socket.</summary>
    public FirecrackerSocketNotFoundException(string message, string? socketPath, string? operation, Exception? innerException = null)
        : base(message, socketPath, operation, innerException)
    {
    }
}

/// <summary>The socket file exists but nothing listens on it: typically a stale socket of a Firecracker that died.</summary>
public sealed class FirecrackerConnectionRefusedException : FirecrackerConnectionException
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerConnectionRefusedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerConnectionRefusedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerConnectionRefusedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an operation on a socket.</summary>
    public FirecrackerConnectionRefusedException(string message, string? socketPath, string? operation, Exception? innerException = null)
        : base(message, socketPath, operation, innerException)
    {
    }
}

/// <summary>
/// Firecracker closed the connection before its answer was complete: the process probably exited (a failed
/// snapshot load or a guest reboot ends it). Whether the request took effect is unknown.
/// </summary>
public sealed class FirecrackerConnectionClosedException : FirecrackerConnectionException
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerConnectionClosedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerConnectionClosedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerConnectionClosedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an operation on a socket.</summary>
    public FirecrackerConnectionClosedException(string message, string? socketPath, string? operation, Exception? innerException = null)
        : base(message, socketPath, operation, innerException)
    {
    }
}

/// <summary>The answer was not the HTTP/JSON Firecracker speaks; <see cref="Excerpt"/> shows what came back.</summary>
public sealed class FirecrackerProtocolException : FirecrackerException
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerProtocolException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerProtocolException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an answer.</summary>
    public FirecrackerProtocolException(string message, string? socketPath, string? operation, string excerpt, Exception? innerException = null)
        : base(message, socketPath, operation, innerException)
    {
        Excerpt = excerpt;
    }

    /// <summary>The start of what came back, with control characters escaped.</summary>
    public string Excerpt { get; } = "";
}

/// <summary>
/// Firecracker did not answer within the request deadline (<see cref="FirecrackerClientOptions.RequestTimeout"/>).
/// The caller's own cancellation is an <see cref="OperationCanceledException"/> instead.
/// </summary>
public sealed class FirecrackerTimeoutException : FirecrackerException
{
    /// <summary>Creates the exception.</summary>
    public FirecrackerTimeoutException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FirecrackerTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public FirecrackerTimeoutException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an operation on a socket.</summary>
    public FirecrackerTimeoutException(string message, string? socketPath, string? operation, TimeSpan timeout, Exception? innerException = null)
        : base(message, socketPath, operation, innerException)
    {
        Timeout = timeout;
    }

    /// <summary>The deadline that passed.</summary>
    public TimeSpan Timeout { get; }
}
