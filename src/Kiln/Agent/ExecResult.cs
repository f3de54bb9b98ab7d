using System.Text;

namespace Kiln.Agent;

/// <summary>How a command in the guest ended.</summary>
/// <param name="ExitCode">The exit code; 128 + the signal when a signal killed it (the shell's convention).</param>
/// <param name="Signal">The signal that killed it, or null when it exited.</param>
/// <param name="TimedOut">Whether the agent killed it because <see cref="ExecOptions.Timeout"/> passed.</param>
public sealed record ExecExit(int ExitCode, int? Signal, bool TimedOut);

/// <summary>A finished command: how it ended and everything it wrote.</summary>
public sealed record ExecResult(ExecExit Exit, byte[] StandardOutput, byte[] StandardError)
{
    /// <summary>The exit code (128 + signal when killed by one).</summary>
    public int ExitCode => Exit.ExitCode;

    /// <summary>The command's stdout as UTF-8 text.</summary>
    public string Stdout => Encoding.UTF8.GetString(StandardOutput);

    /// <summary>The command's stderr as UTF-8 text.</summary>
    public string Stderr => Encoding.UTF8.GetString(StandardError);
}
