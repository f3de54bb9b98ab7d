namespace Kiln.Agent;

/// <summary>
/// The agent refused or failed an operation and said why: <see cref="ErrorCode"/> is the protocol's code
/// (<c>not-found</c>, <c>permission-denied</c>, <c>invalid-request</c>, <c>exec-failed</c>, <c>io</c>,
/// <c>unsupported</c>, <c>version</c>, <c>protocol</c>, <c>internal</c>) and the message is the agent's text.
/// </summary>
public sealed class AgentOperationException : Exception
{
    /// <summary>Creates the exception from the agent's error.</summary>
    public AgentOperationException(string errorCode, string message) : base(message) => ErrorCode = errorCode;

    /// <summary>Creates the exception.</summary>
    public AgentOperationException() : this("internal", "The agent failed the operation.")
    {
    }

    /// <summary>Creates the exception.</summary>
    public AgentOperationException(string message) : this("internal", message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public AgentOperationException(string message, Exception innerException) : base(message, innerException) => ErrorCode = "internal";

    /// <summary>The agent's error code.</summary>
    public string ErrorCode { get; }
}
