namespace Kiln.Vmm;

/// <summary>How to launch one firecracker process.</summary>
public sealed record VmmLaunchOptions
{
    /// <summary>The firecracker binary (absolute, relative, or a name looked up on PATH).</summary>
    public required string ExecutablePath { get; init; }

    /// <summary>Its command line.</summary>
    public required VmmArguments Arguments { get; init; }

    /// <summary>
    /// The file that receives everything the process writes (the guest's serial console and, until a logger is
    /// configured, Firecracker's own log). Appended to.
    /// </summary>
    public required string OutputPath { get; init; }

    /// <summary>
    /// Detached: a new session (setsid), stdin from /dev/null, stdout/stderr straight into <see cref="OutputPath"/>,
    /// so it survives this process — no pipe of ours it could die writing to (SIGPIPE, exit 155). Otherwise owned:
    /// output is piped through this process and the VMM is killed when this process exits.
    /// </summary>
    public bool Detached { get; init; }

    /// <summary>
    /// How large the output file of an owned VMM may grow before it rotates (see <see cref="RotatingFileWriter"/>);
    /// null: unbounded. A detached VMM's output is appended by the kernel straight to the file, unbounded, unless a
    /// <see cref="ConsoleKeeper"/> writes it.
    /// </summary>
    public OutputRotation? OutputRotation { get; init; } = Vmm.OutputRotation.Default;

    /// <summary>
    /// Detached only: a FIFO that becomes the VMM's stdin, i.e. the guest's serial input (opened read-write, so
    /// opening never waits for a writer and the guest never sees end-of-file). Null: stdin is /dev/null. An owned
    /// VMM's serial input is <see cref="VmmProcess.SerialInput"/>.
    /// </summary>
    public string? InputPath { get; init; }

    /// <summary>
    /// Detached only: a console keeper (<see cref="ConsoleKeeper"/>) between the VMM and <see cref="OutputPath"/>, so
    /// the file stays within <see cref="OutputRotation"/> while nobody holds the VM. The VMM's stdout is then the FIFO
    /// <c>OutputPath.fifo</c>, which the keeper reads; it outlives this process and ends with the VMM. Null: the VMM
    /// appends to the file itself, unbounded until someone rotates it (<see cref="CopyTruncateRotation"/>).
    /// </summary>
    public ConsoleKeeperCommand? ConsoleKeeper { get; init; }

    /// <summary>
    /// Detached only: stdout and stderr onto this FIFO, which the caller made, and no keeper started here: the caller
    /// starts it once it knows the real VMM (a jailer execs firecracker in place or forks it in a PID namespace).
    /// </summary>
    internal string? OutputFifoPath { get; init; }

    /// <summary>The clock of the console keeper's readiness deadline.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Extra environment variables for the process.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>The working directory; the caller's when null.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// A network namespace to run the VMM in (e.g. <c>/run/netns/kiln-web</c>): firecracker opens its TAPs there.
    /// Entered with nsenter(1), which execs in place, so the PID and the identity stay the VMM's. Null: ours.
    /// </summary>
    public string? NetworkNamespacePath { get; init; }

    /// <summary>
    /// The process's arguments verbatim, instead of <see cref="Arguments"/>: a jailer's command line, which carries
    /// firecracker's after <c>--</c>.
    /// </summary>
    public IReadOnlyList<string>? CommandLine { get; init; }

    /// <summary>How many output lines to keep for error reports.</summary>
    public int TailLines { get; init; } = 64;

    /// <summary>
    /// Starts the VMM in a private mount namespace of its own (<c>unshare --mount</c>, which execs in place, so the
    /// PID stays the VMM's): bind mounts made in it later (<see cref="MountNamespace.BindAsync"/>) are seen by this
    /// VMM alone. Root only.
    /// </summary>
    public bool PrivateMountNamespace { get; init; }
}
