using System.CommandLine;
using Kiln.Agent;
using Kiln.Cli.Infrastructure;

namespace Kiln.Cli.Commands;

/// <summary>
/// <c>kiln exec NAME -- CMD ARGS…</c>: runs a command in the guest through its agent, streams its stdout and stderr to
/// ours, and exits with its exit code (128 + signal when a signal ended it; 126 when it could not start, 127 when it
/// was not found, as shells do).
/// </summary>
internal static class ExecCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        var argv = new Argument<string[]>("command") { Description = "The command and its arguments (after --).", Arity = ArgumentArity.OneOrMore };
        var user = new Option<string?>("--user", "-u") { Description = "Run as this user (name or UID[:GID])." };
        var workdir = new Option<string?>("--workdir", "-w") { Description = "Working directory in the guest." };
        var env = new Option<string[]>("--env", "-e") { Description = "Set a variable (NAME=VALUE); repeatable.", AllowMultipleArgumentsPerToken = false };
        var timeout = new Option<double?>("--timeout") { Description = "Kill the command after this many seconds." };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "Forward our stdin to the command." };
        timeout.Check(v => v is <= 0 ? "--timeout must be positive." : null);
        env.Check(values => values?.FirstOrDefault(v => v.IndexOf('=', StringComparison.Ordinal) <= 0) is { } bad ? $"--env: '{bad}' is not NAME=VALUE." : null);
        var command = new Command("exec", "Run a command in a sandbox's guest and stream its output.") { name, argv, user, workdir, env, timeout, interactive };
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var options = new ExecOptions
            {
                User = context.Value(user),
                WorkingDirectory = context.Value(workdir),
                Environment = (context.Value(env) ?? []).Select(v => v.Split('=', 2)).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal),
                Timeout = context.Value(timeout) is { } s ? TimeSpan.FromSeconds(s) : null,
            };
            var client = await GuestAgents.ConnectAsync(context, context.Value(name), cancellationToken);
            try
            {
                return context.Json
                    ? await RunJsonAsync(client, context.Value(argv), options, cancellationToken)
                    : await RunStreamingAsync(client, context.Value(argv), options, context.Value(interactive), cancellationToken);
            }
            catch (AgentOperationException e) when (e.ErrorCode is "not-found" or "exec-failed" or "permission-denied")
            {
                Console.Error.WriteLine($"kiln exec: {e.Message}");
                return e.ErrorCode == "not-found" ? 127 : 126;
            }
        });
    }

    private static async Task<int> RunStreamingAsync(AgentClient client, string[] argv, ExecOptions options, bool interactive, CancellationToken cancellationToken)
    {
        await using var process = await client.StartAsync(argv, options, interactive, cancellationToken);
        await using var stdout = Console.OpenStandardOutput();
        await using var stderr = Console.OpenStandardError();
        var copyOut = process.StandardOutput.CopyToAsync(stdout, cancellationToken);
        var copyErr = process.StandardError.CopyToAsync(stderr, cancellationToken);
        if (interactive)
            _ = ForwardStdinAsync(process, cancellationToken);
        var exit = await process.Exit.WaitAsync(cancellationToken);
        await Task.WhenAll(copyOut, copyErr);
        if (exit.TimedOut)
            Console.Error.WriteLine("kiln exec: the command timed out and was killed.");
        return exit.ExitCode;
    }

    // Our stdin may never end (a terminal): the copy is abandoned when the command exits.
    private static async Task ForwardStdinAsync(ExecProcess process, CancellationToken cancellationToken)
    {
        try
        {
            await using var stdin = Console.OpenStandardInput();
            await stdin.CopyToAsync(process.StandardInput, cancellationToken);
            await process.StandardInput.DisposeAsync();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The command ended first.
        }
    }

    private static async Task<int> RunJsonAsync(AgentClient client, string[] argv, ExecOptions options, CancellationToken cancellationToken)
    {
        var result = await client.ExecAsync(argv, options, cancellationToken);
        Output.WriteJson(new ExecResultJson(result.ExitCode, result.Exit.Signal, result.Exit.TimedOut, result.Stdout, result.Stderr), CliJsonContext.Default.ExecResultJson);
        return result.ExitCode;
    }
}
