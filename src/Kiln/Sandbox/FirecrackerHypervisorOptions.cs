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

    /// <summary>
    /// With <see cref="VmmOwnership.Detached"/>: the console keeper to start beside each VMM
    /// (<see cref="Kiln.Vm.MicrovmOptions.ConsoleKeeper"/>), so the console log stays bounded while no driver holds the
    /// sandbox. Not for jailed sandboxes (yet). The <c>kiln</c> tool passes itself (<c>kiln console-keeper</c>).
    /// </summary>
    public ConsoleKeeperCommand? ConsoleKeeper { get; init; }

    /// <summary>Extra environment variables for the VMM process (e.g. a stand-in's knobs).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>How the VMM gets its configuration: the API sequence (the default) or a <c>--config-file</c>.</summary>
    public Kiln.Vm.MicrovmStartPath StartPath { get; init; } = Kiln.Vm.MicrovmStartPath.Api;

    /// <summary>
    /// Where sandbox networks (<see cref="HypervisorConfig.Network"/>) are recorded and how their namespaces are
    /// named; Kiln's defaults (<c>/run/kiln/net</c>, <c>/run/netns/kiln-ID</c>) unless given.
    /// </summary>
    public Kiln.Host.Network.SandboxNetworksOptions Networks { get; init; } = new();

    /// <summary>
    /// A cache of paused clones of one template (<see cref="Sandbox.VmCache"/>): a sandbox restored from that template
    /// takes one (resumed in its own directory) instead of restoring, or restores directly when none is ready. The
    /// cache is shared, not owned: whoever started it disposes it.
    /// </summary>
    public VmCache? VmCache { get; init; }

    internal ILogger CreateLogger() =>
        LoggerFactory?.CreateLogger("Kiln.Sandbox.FirecrackerHypervisor") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
}
