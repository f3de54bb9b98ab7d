using Kiln.Vmm;
using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox;

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

    /// <summary>How the VMM gets its configuration: the API sequence (the default) or a <c>--config-file</c>.</summary>
    public Kiln.Vm.MicrovmStartPath StartPath { get; init; } = Kiln.Vm.MicrovmStartPath.Api;

    internal ILogger CreateLogger() =>
        LoggerFactory?.CreateLogger("Kiln.Sandbox.FirecrackerHypervisor") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
}
