namespace Kiln.Agent.Protocol;

/// <summary>
/// The one byte that says what a frame carries. Values are grouped by area (16s: control, 32s: exec, 48s: files) and
/// never reused; a reader rejects any value not listed here.
/// </summary>
internal enum FrameType : byte
{
    /// <summary>First frame each way: the protocol version (JSON <see cref="HelloMessage"/>).</summary>
    Hello = 1,

    /// <summary>The operation failed (JSON <see cref="ErrorMessage"/>); the agent closes the connection after it.</summary>
    Error = 2,

    /// <summary>The operation succeeded (empty).</summary>
    Ok = 3,

    /// <summary>File contents (raw bytes); an empty payload ends the stream.</summary>
    Data = 4,

    /// <summary>Ask for the agent's health (empty); answered by <see cref="HealthReply"/>.</summary>
    Health = 16,

    /// <summary>JSON <see cref="HealthMessage"/>.</summary>
    HealthReply = 17,

    /// <summary>Power the guest off (empty); answered by <see cref="Ok"/> before the agent shuts down.</summary>
    PowerOff = 18,

    /// <summary>Start a process (JSON <see cref="ExecRequest"/>); answered by <see cref="ExecStarted"/>.</summary>
    Exec = 32,

    /// <summary>JSON <see cref="ExecStartedMessage"/>.</summary>
    ExecStarted = 33,

    /// <summary>Bytes for the process's stdin (raw); an empty payload closes it.</summary>
    Stdin = 34,

    /// <summary>Bytes the process wrote to stdout (raw); an empty payload means stdout closed.</summary>
    Stdout = 35,

    /// <summary>Bytes the process wrote to stderr (raw); an empty payload means stderr closed.</summary>
    Stderr = 36,

    /// <summary>Send a signal to the process (JSON <see cref="SignalMessage"/>).</summary>
    Signal = 37,

    /// <summary>The process ended (JSON <see cref="ExitMessage"/>); always after both output streams ended.</summary>
    Exit = 38,

    /// <summary>Write a file (JSON <see cref="FileWriteRequest"/>), followed by <see cref="Data"/> frames.</summary>
    FileWrite = 48,

    /// <summary>Read a file (JSON <see cref="PathRequest"/>); answered by <see cref="FileInfo"/> then <see cref="Data"/>.</summary>
    FileRead = 49,

    /// <summary>Describe a path (JSON <see cref="PathRequest"/>); answered by <see cref="FileInfo"/>.</summary>
    FileStat = 50,

    /// <summary>JSON <see cref="FileInfoMessage"/>.</summary>
    FileInfo = 51,

    /// <summary>List a directory (JSON <see cref="PathRequest"/>); answered by <see cref="FileInfo"/> frames, then <see cref="Ok"/>.</summary>
    FileList = 52,

    /// <summary>Remove a path (JSON <see cref="FileRemoveRequest"/>); answered by <see cref="Ok"/>.</summary>
    FileRemove = 53,
}
