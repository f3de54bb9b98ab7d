using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox;

/// <summary>Who owns a sandbox's VMM process.</summary>
public enum VmmOwnership
{
    /// <summary>
    /// The VMM dies with the process that started it: killed on dispose and on process exit, and (through
    /// PR_SET_PDEATHSIG) even when the owner is SIGKILLed. It never outlives its owner by accident.
    /// </summary>
    Owned,

    /// <summary>
    /// The VMM runs in its own session with its output going straight to the console file, survives its starter,
    /// and is owned by the state directory: a later driver re-attaches and stops it (<c>kiln run --detach</c>).
    /// </summary>
    Detached,
}

/// <summary>How a <see cref="FirecrackerHypervisor"/> runs.</summary>
public sealed record FirecrackerHypervisorOptions
{
    /// <summary>Where log events go; nowhere when null.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The clock for every deadline (API readiness, boot, stop grace).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Who owns the VMM process.</summary>
    public VmmOwnership Ownership { get; init; } = VmmOwnership.Owned;

    /// <summary>Extra environment variables for the VMM process (e.g. a stand-in's knobs).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    internal ILogger CreateLogger() =>
        LoggerFactory?.CreateLogger("Kiln.Sandbox.FirecrackerHypervisor") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
}
