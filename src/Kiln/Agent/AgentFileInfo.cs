namespace Kiln.Agent;

/// <summary>What a path in the guest is.</summary>
public enum AgentFileKind
{
    /// <summary>A regular file (or a device, FIFO or socket).</summary>
    File,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A symbolic link (not followed).</summary>
    Symlink,
}

/// <summary>A path in the guest: its kind, size, permission bits and modification time.</summary>
public sealed record AgentFileInfo(string Path, AgentFileKind Kind, long Size, UnixFileMode Mode, DateTimeOffset Modified);

/// <summary>The agent's answer to a health call.</summary>
/// <param name="AgentVersion">The agent's version.</param>
/// <param name="ProtocolVersion">The protocol version it speaks.</param>
/// <param name="Pid">Its PID in the guest.</param>
/// <param name="IsInit">Whether it is the guest's init (and so can power the guest off).</param>
/// <param name="Uptime">How long it has been serving.</param>
public sealed record AgentHealth(string AgentVersion, int ProtocolVersion, int Pid, bool IsInit, TimeSpan Uptime);
