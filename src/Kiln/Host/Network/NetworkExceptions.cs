namespace Kiln.Host.Network;

/// <summary>The base of every error of Kiln's host networking (TAPs, namespaces, veth pairs, nftables).</summary>
public class NetworkException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NetworkException(string message, Exception? innerException = null) : base(message, innerException) { }
}

/// <summary>A network setting with a bad value, refused before anything on the host changes.</summary>
public sealed class NetworkConfigurationException(string propertyName, string message)
    : NetworkException($"{propertyName}: {message}")
{
    /// <summary>The bad property.</summary>
    public string PropertyName { get; } = propertyName;
}

/// <summary>A TAP name another sandbox has claimed: two sandboxes never share a TAP.</summary>
public sealed class TapOwnedByAnotherSandboxException(string tapName, string owner)
    : NetworkException($"The TAP '{tapName}' belongs to sandbox '{owner}'.")
{
    /// <summary>The TAP.</summary>
    public string TapName { get; } = tapName;

    /// <summary>The sandbox that owns it.</summary>
    public string Owner { get; } = owner;
}

/// <summary>A device of that name exists and Kiln did not create it: Kiln neither takes it over nor removes it.</summary>
public sealed class TapNotCreatedByKilnException(string tapName, string reason)
    : NetworkException($"The TAP '{tapName}' was not created by Kiln: {reason}")
{
    /// <summary>The TAP.</summary>
    public string TapName { get; } = tapName;
}

/// <summary>A host tool (<c>ip</c>, <c>nft</c>, <c>nsenter</c>) failed; carries its arguments, exit code and error output.</summary>
public sealed class HostCommandException(string command, int exitCode, string standardError)
    : NetworkException($"'{command}' failed with exit code {exitCode}: {standardError.Trim()}")
{
    /// <summary>The command line, for the reader (it was run without a shell).</summary>
    public string Command { get; } = command;

    /// <summary>The tool's exit code (-1: it did not finish in time).</summary>
    public int ExitCode { get; } = exitCode;

    /// <summary>What the tool wrote on stderr.</summary>
    public string StandardError { get; } = standardError;
}
