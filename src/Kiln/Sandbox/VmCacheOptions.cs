using Kiln.Vm;
using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox;

/// <summary>What a <see cref="VmCache"/> keeps ready, and where.</summary>
public sealed record VmCacheOptions
{
    /// <summary>The template the cached VMs are clones of (<see cref="Kiln.Vm.Templates.MicrovmTemplate.Directory"/>).</summary>
    public required string TemplateDirectory { get; init; }

    /// <summary>The firecracker binary that restores them (a sandbox using the cache must name the same one).</summary>
    public required string FirecrackerPath { get; init; }

    /// <summary>
    /// Where the cached VMs live until they are handed out, one <c>slot-N</c> directory each. It must be on the same
    /// file system as the sandboxes that take them (a hand-over renames the VM's sockets and files into the sandbox
    /// directory) and is the cache's alone while it runs (it holds a lock on it and clears what a dead cache left).
    /// </summary>
    public required string Directory { get; init; }

    /// <summary>How many restored, paused VMs are kept ready (Kata's <c>VMCacheNumber</c>).</summary>
    public int Size { get; init; } = 1;

    /// <summary>How many refills may restore at once.</summary>
    public int MaxConcurrentRestores { get; init; } = 1;

    /// <summary>Load with dirty-page tracking; only sandboxes asking the same get a cached VM.</summary>
    public bool TrackDirtyPages { get; init; }

    /// <summary>Load with <c>clock_realtime</c>; only sandboxes asking the same get a cached VM. The clock is advanced at the load, not at the hand-over.</summary>
    public bool ClockRealtime { get; init; }

    /// <summary>How long a refill's VMM may take to answer its API.</summary>
    public TimeSpan ApiReadyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a refill's snapshot load may take.</summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The deadline of one API request.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How cached VMs are stopped on dispose (and a failed hand-over's): SIGTERM, then SIGKILL after 5 s when null.</summary>
    public ShutdownPlan? ShutdownPlan { get; init; }

    /// <summary>Extra environment variables for the VMMs (e.g. a stand-in's knobs).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>Where log events go; nowhere when null.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The clock for every deadline.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    internal ShutdownPlan EffectiveShutdownPlan => ShutdownPlan ?? ShutdownPlan.TerminateThenKill(TimeSpan.FromSeconds(5));

    /// <summary>Refuses options no cache could use, naming the property.</summary>
    /// <exception cref="SandboxConfigurationException">The bad property.</exception>
    public void Validate()
    {
        if (string.IsNullOrEmpty(TemplateDirectory))
            throw new SandboxConfigurationException(nameof(TemplateDirectory), "is required");
        if (string.IsNullOrEmpty(FirecrackerPath))
            throw new SandboxConfigurationException(nameof(FirecrackerPath), "is required");
        if (string.IsNullOrEmpty(Directory))
            throw new SandboxConfigurationException(nameof(Directory), "is required");
        if (Size < 1)
            throw new SandboxConfigurationException(nameof(Size), $"must be at least 1, not {Size}");
        if (MaxConcurrentRestores < 1)
            throw new SandboxConfigurationException(nameof(MaxConcurrentRestores), $"must be at least 1, not {MaxConcurrentRestores}");
        if (ApiReadyTimeout < TimeSpan.Zero || BootTimeout < TimeSpan.Zero || RequestTimeout <= TimeSpan.Zero)
            throw new SandboxConfigurationException(nameof(ApiReadyTimeout), "timeouts must not be negative");
        // The longest socket a slot holds: Directory/slot-NNNNNNNNNN/firecracker.sock.
        var longest = Path.Combine(Path.GetFullPath(Directory), "slot-0000000000", "firecracker.sock");
        if (!Kiln.Api.UnixSocketPath.IsValid(longest))
            throw new SandboxConfigurationException(nameof(Directory), $"is too long for the sockets under it ({longest} exceeds {Kiln.Api.UnixSocketPath.MaxLength} bytes)");
    }
}
