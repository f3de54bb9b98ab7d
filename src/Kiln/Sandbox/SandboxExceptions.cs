namespace Kiln.Sandbox;

/// <summary>The base of every error the sandbox driver raises.</summary>
public class SandboxException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SandboxException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>The sandbox concerned, when known.</summary>
    public string? SandboxId { get; init; }
}

/// <summary>A sandbox id that is not a safe single path segment, or that makes the socket path too long.</summary>
public sealed class InvalidSandboxIdException(string sandboxId, string reason)
    : SandboxException($"Invalid sandbox id '{sandboxId}': {reason}")
{
    /// <summary>Why the id was refused.</summary>
    public string Reason { get; } = reason;
}

/// <summary>A configuration property with a bad value; raised before anything starts.</summary>
public sealed class SandboxConfigurationException(string propertyName, string message)
    : SandboxException($"{propertyName}: {message}")
{
    /// <summary>The bad property.</summary>
    public string PropertyName { get; } = propertyName;
}

/// <summary>An operation called in a state that does not allow it.</summary>
public sealed class SandboxStateException(string operation, SandboxState actual, params SandboxState[] expected)
    : SandboxException($"Cannot {operation}: the sandbox is {actual}, expected {string.Join(" or ", expected)}.")
{
    /// <summary>The state the sandbox was in.</summary>
    public SandboxState Actual { get; } = actual;

    /// <summary>The states the operation needs.</summary>
    public IReadOnlyList<SandboxState> Expected { get; } = expected;
}

/// <summary>Something Firecracker (or this driver) cannot do, e.g. vCPU resize.</summary>
public sealed class HypervisorNotSupportedException(string operation, string reason)
    : SandboxException($"{operation} is not supported: {reason}")
{
    /// <summary>The operation refused.</summary>
    public string Operation { get; } = operation;
}

/// <summary>Every placeholder slot of the block pool is taken.</summary>
public sealed class BlockPoolExhaustedException(int poolSize)
    : SandboxException($"All {poolSize} block pool slots are in use; detach a drive or raise BlockPoolSize.")
{
    /// <summary>The pool size.</summary>
    public int PoolSize { get; } = poolSize;
}

/// <summary>No sandbox with that id exists under the root.</summary>
public sealed class SandboxNotFoundException(string sandboxId, string rootDirectory)
    : SandboxException($"No sandbox '{sandboxId}' under {rootDirectory}.")
{
    /// <summary>The root searched.</summary>
    public string RootDirectory { get; } = rootDirectory;
}

/// <summary>
/// Start failed: the VMM was killed and what start created was removed. Carries the failing step, Firecracker's
/// fault message when it gave one, and the tail of the VMM's output.
/// </summary>
public sealed class SandboxStartException(string step, string message, string? faultMessage, string outputTail, Exception? innerException = null)
    : SandboxException(message, innerException)
{
    /// <summary>The start step that failed (e.g. "boot-source").</summary>
    public string Step { get; } = step;

    /// <summary>Firecracker's fault_message, when the failure was an API answer.</summary>
    public string? FaultMessage { get; } = faultMessage;

    /// <summary>The last lines the VMM wrote to stdout/stderr.</summary>
    public string OutputTail { get; } = outputTail;
}
