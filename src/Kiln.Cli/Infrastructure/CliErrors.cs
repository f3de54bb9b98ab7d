namespace Kiln.Cli.Infrastructure;

/// <summary>
/// Bad input caught before anything starts (exit 2): the command line, as typed, can never succeed.
/// State-dependent refusals (unknown sandbox, duplicate name, a running VM) are failures (exit 1) instead.
/// </summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>An operation that failed for a reason the CLI itself detected (exit 1).</summary>
internal sealed class CliFailureException(string message) : Exception(message);

/// <summary>The process exit codes kiln documents.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int Interrupted = 130;
}
