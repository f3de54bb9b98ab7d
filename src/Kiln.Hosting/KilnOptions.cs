using Kiln.Vm;

namespace Kiln.Hosting;

/// <summary>Kiln's settings in a generic host (bound from configuration, e.g. the <c>Kiln</c> section).</summary>
public sealed class KilnOptions
{
    /// <summary>The configuration section <see cref="KilnServiceCollectionExtensions.AddKiln(Microsoft.Extensions.DependencyInjection.IServiceCollection, Microsoft.Extensions.Configuration.IConfiguration, Action{KilnOptions}?)"/> reads by convention.</summary>
    public const string SectionName = "Kiln";

    /// <summary>How long the guest gets to shut down after Ctrl-Alt-Del when the host stops.</summary>
    public TimeSpan GuestShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the VMM gets after SIGTERM before SIGKILL when the host stops.</summary>
    public TimeSpan TerminateTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Whether the host's shutdown asks the guest first (Ctrl-Alt-Del), or starts at SIGTERM.</summary>
    public bool GracefulGuestShutdown { get; set; } = true;

    /// <summary>The plan the hosted service stops a VM by when it was registered without one.</summary>
    public ShutdownPlan DefaultShutdownPlan => GracefulGuestShutdown
        ? ShutdownPlan.Graceful(GuestShutdownTimeout, TerminateTimeout)
        : ShutdownPlan.TerminateThenKill(TerminateTimeout);
}
