using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.InteropServices;
using Kiln.Api;
using Kiln.Cli.Commands;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Kiln.Vmm;

namespace Kiln.Cli;

/// <summary>The entry point: builds the command tree, maps parse errors to exit 2 and exceptions to exit 1.</summary>
internal static class KilnApp
{
    public static Command BuildCommandTree(GlobalOptions globals)
    {
        // A plain Command named "kiln" rather than RootCommand, which would name itself after the apphost (Kiln.Cli).
        var root = new Command("kiln", "kiln: run, inspect, hot-plug, pause, snapshot and stop Firecracker microVMs.")
        {
            new HelpOption(),
            new VersionOption(),
        };
        root.Options.Add(globals.Root);
        root.Options.Add(globals.Json);
        root.Options.Add(globals.Verbose);
        root.Subcommands.Add(RunCommand.Create(globals));
        root.Subcommands.Add(PsCommand.Create(globals));
        root.Subcommands.Add(InspectCommand.Create(globals));
        root.Subcommands.Add(StopCommand.Create(globals));
        root.Subcommands.Add(RemoveCommand.Create(globals));
        root.Subcommands.Add(DriveCommands.Create(globals));
        root.Subcommands.Add(LimitCommand.Create(globals));
        root.Subcommands.Add(MetadataCommand.Create(globals));
        root.Subcommands.Add(LogsCommand.Create(globals));
        root.Subcommands.Add(AttachCommand.Create(globals));
        root.Subcommands.Add(ThreadsCommand.Create(globals));
        root.Subcommands.Add(MemoryCommands.CreateMem(globals));
        root.Subcommands.Add(MemoryCommands.CreateStats(globals));
        root.Subcommands.Add(VsockCommand.Create(globals));
        root.Subcommands.Add(ExecCommand.Create(globals));
        root.Subcommands.Add(CpCommand.Create(globals));
        root.Subcommands.Add(PauseResumeCommands.CreatePause(globals));
        root.Subcommands.Add(PauseResumeCommands.CreateResume(globals));
        root.Subcommands.Add(PauseResumeCommands.CreateSnapshot(globals));
        root.Subcommands.Add(TemplateCommands.Create(globals));
        root.Subcommands.Add(RestoreCommand.Create(globals));
        root.Subcommands.Add(ImageCommands.Create(globals));
        root.Subcommands.Add(VersionCommand.Create(globals));
        root.Subcommands.Add(DemoCommand.Create(globals));
        OptionValueGuard.Install(root);
        return root;
    }

    /// <summary>
    /// The hidden command that runs a console keeper (<see cref="ConsoleKeeper"/>): started by kiln beside a detached
    /// VMM, never by hand, so it is not in the command tree or its help.
    /// </summary>
    public const string ConsoleKeeperVerb = "console-keeper";

    public static async Task<int> RunAsync(string[] args)
    {
        if (args is [ConsoleKeeperVerb, .. var keeperArguments])
            return await ConsoleKeeper.RunAsync(keeperArguments);
        var globals = new GlobalOptions();
        var parse = BuildCommandTree(globals).Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
                Console.Error.WriteLine($"kiln: {error.Message}");
            Console.Error.WriteLine($"Run '{CommandPath(parse)} --help' for usage.");
            return ExitCodes.Usage;
        }

        using var interruption = new Interruption();
        var configuration = new InvocationConfiguration
        {
            // kiln owns SIGINT/SIGTERM (Interruption) so that `run` can stop its VM cleanly instead of being cut off.
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            return await parse.InvokeAsync(configuration, interruption.Token);
        }
        catch (Exception exception)
        {
            return Report(exception, CommandPath(parse), parse.GetValue(globals.Verbose), interruption.Token);
        }
    }

    private static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(result.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>One clear line on stderr; the stack trace only with --verbose.</summary>
    internal static int Report(Exception exception, string commandPath, bool verbose, CancellationToken interrupted)
    {
        var (code, message) = Describe(exception, verbose, interrupted);
        Console.Error.WriteLine($"{commandPath}: {message}");
        // What failed while cleaning up after the failure: said too, after it, never in its place.
        foreach (var cleanup in Kiln.CleanupFailures.All(exception))
            Console.Error.WriteLine($"{commandPath}: and cleaning up after it failed: {cleanup.Message}");
        if (verbose && exception is not UsageException)
            Console.Error.WriteLine(exception.ToString());
        return code;
    }

    private static (int Code, string Message) Describe(Exception exception, bool verbose, CancellationToken interrupted)
    {
        switch (exception)
        {
            case UsageException or InvalidSandboxIdException or SandboxConfigurationException:
                return (ExitCodes.Usage, exception.Message);
            case OperationCanceledException when interrupted.IsCancellationRequested:
                return (ExitCodes.Interrupted, "interrupted.");
            case SandboxStartException start:
                var text = WithFault(start.Message, start.FaultMessage ?? FaultOf(start.InnerException));
                if (start.Step.Length > 0 && !text.Contains(start.Step, StringComparison.Ordinal))
                    text = $"start failed at step {start.Step}: {text}";
                if (verbose && start.OutputTail.Length > 0)
                    text += Environment.NewLine + "firecracker output:" + Environment.NewLine + start.OutputTail;
                return (ExitCodes.Failure, text);
            case Kiln.Agent.AgentOperationException agent:
                return (ExitCodes.Failure, $"the guest agent said: {agent.Message} ({agent.ErrorCode})");
            case SandboxException or CliFailureException or FirecrackerException or Kiln.Host.Vsock.VsockException or IOException or UnauthorizedAccessException or TimeoutException
                or Kiln.Vm.MicrovmException:
                return (ExitCodes.Failure, WithFault(exception.Message, FaultOf(exception)));
            default:
                return (ExitCodes.Failure, $"{exception.GetType().Name}: {WithFault(exception.Message, FaultOf(exception))}");
        }
    }

    private static string? FaultOf(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is FirecrackerApiException api && !string.IsNullOrEmpty(api.FaultMessage))
                return api.FaultMessage;
        }
        return null;
    }

    private static string WithFault(string message, string? fault) =>
        fault is null || message.Contains(fault, StringComparison.Ordinal) ? message : $"{message} Firecracker said: {fault}";
}

/// <summary>The options every command accepts.</summary>
internal sealed class GlobalOptions
{
    public Option<string?> Root { get; } = new("--root")
    {
        Description = "State directory holding the sandboxes (default: $KILN_ROOT, else /run/kiln as root, else $XDG_RUNTIME_DIR/kiln).",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print machine-readable JSON (shapes documented in the CLI README).",
        Recursive = true,
    };

    public Option<bool> Verbose { get; } = new("--verbose")
    {
        Description = "Show stack traces and Firecracker's output on failure.",
        Recursive = true,
    };
}

/// <summary>
/// The first SIGINT/SIGTERM cancels <see cref="Token"/> so commands can wind down (a foreground VM is stopped);
/// a second one is left to the default handler and ends the process at once.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration _interrupt;
    private readonly PosixSignalRegistration _terminate;

    public Interruption()
    {
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    public CancellationToken Token => _source.Token;

    private void OnSignal(PosixSignalContext context)
    {
        if (_source.IsCancellationRequested)
            return;
        context.Cancel = true;
        _source.Cancel();
    }

    public void Dispose()
    {
        _interrupt.Dispose();
        _terminate.Dispose();
        _source.Dispose();
    }
}
