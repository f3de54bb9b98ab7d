namespace Kiln.Agent;

/// <summary>
/// The peer broke Kiln's agent protocol: a truncated or oversized frame, an unknown frame type, a malformed message,
/// an unexpected frame, or a protocol version this side does not speak.
/// </summary>
public sealed class AgentProtocolException : IOException
{
    /// <summary>Creates the exception with a message naming what was wrong.</summary>
    public AgentProtocolException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that revealed it.</summary>
    public AgentProtocolException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public AgentProtocolException() : base("The agent protocol was violated.")
    {
    }
}
