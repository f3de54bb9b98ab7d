// The VMs the host owns: each with the plan it is stopped by. The hosted service stops them all when the host stops.
using System.Collections.Concurrent;
using Kiln.Vm;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kiln.Hosting;

/// <summary>The microVMs the host owns, and how each is stopped when the host stops.</summary>
public sealed partial class KilnVmRegistry
{
    private readonly ConcurrentDictionary<Microvm, ShutdownPlan> _vms = new();
    private readonly KilnOptions _options;
    private readonly ILogger<KilnVmRegistry> _logger;

    /// <summary>Created by the container (<see cref="KilnServiceCollectionExtensions.AddKiln(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{KilnOptions}?)"/>).</summary>
    public KilnVmRegistry(IOptions<KilnOptions> options, ILogger<KilnVmRegistry> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>The VMs owned now.</summary>
    public IReadOnlyCollection<Microvm> Vms => (IReadOnlyCollection<Microvm>)_vms.Keys;

    /// <summary>Takes a VM into the host's care: it is stopped by <paramref name="plan"/> (or the options' plan) when the host stops.</summary>
    public void Own(Microvm vm, ShutdownPlan? plan = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        _vms[vm] = plan ?? _options.DefaultShutdownPlan;
    }

    /// <summary>Lets go of a VM (the caller stops it); false when it was not owned.</summary>
    public bool Release(Microvm vm) => _vms.TryRemove(vm, out _);

    /// <summary>Boots a VM with the host's logging and owns it.</summary>
    public async Task<Microvm> BootAsync(MachineDescription description, MicrovmOptions options, ShutdownPlan? plan = null,
        ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.LoggerFactory is null && loggerFactory is not null)
            options = options with { LoggerFactory = loggerFactory };
        var vm = await Microvm.BootAsync(description, options, cancellationToken).ConfigureAwait(false);
        Own(vm, plan);
        return vm;
    }

    /// <summary>Stops every owned VM by its plan, all at once; returns how each ended. A VM that fails to stop is logged, not thrown.</summary>
    public async Task<IReadOnlyDictionary<Microvm, ShutdownOutcome?>> StopAllAsync(CancellationToken cancellationToken)
    {
        var owned = _vms.ToArray();
        var outcomes = await Task.WhenAll(owned.Select(async pair =>
        {
            try
            {
                var outcome = await pair.Key.StopAsync(pair.Value, cancellationToken).ConfigureAwait(false);
                Stopped(_logger, pair.Key.Pid, outcome.EndedBy, outcome.ExitStatus);
                await pair.Key.DisposeAsync().ConfigureAwait(false);
                _vms.TryRemove(pair.Key, out _);
                return (pair.Key, (ShutdownOutcome?)outcome);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The host is going down: one VM's failure must not keep the others running.
                StopFailed(_logger, e, pair.Key.Pid);
                return (pair.Key, (ShutdownOutcome?)null);
            }
        })).ConfigureAwait(false);
        return outcomes.ToDictionary(o => o.Key, o => o.Item2);
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Host stopping: microVM (pid {Pid}) ended by {EndedBy} ({ExitStatus}); none means it had already exited")]
    private static partial void Stopped(ILogger logger, int pid, ShutdownActionKind? endedBy, Kiln.Vmm.VmmProcessState exitStatus);

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "Host stopping: microVM (pid {Pid}) could not be stopped")]
    private static partial void StopFailed(ILogger logger, Exception exception, int pid);
}
