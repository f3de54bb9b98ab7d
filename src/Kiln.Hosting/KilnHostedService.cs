using Microsoft.Extensions.Hosting;

namespace Kiln.Hosting;

/// <summary>Stops the VMs the host owns, each by its shutdown plan, when the host stops.</summary>
public sealed class KilnHostedService(KilnVmRegistry registry) : IHostedService
{
    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc/>
    /// <remarks>The host's shutdown timeout bounds this: give it room for the plans (guest timeout + terminate timeout).</remarks>
    public Task StopAsync(CancellationToken cancellationToken) => registry.StopAllAsync(cancellationToken);
}
