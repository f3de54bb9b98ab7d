using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kiln.Hosting;

/// <summary>Registers Kiln with a generic host.</summary>
public static class KilnServiceCollectionExtensions
{
    /// <summary>
    /// Adds Kiln: <see cref="KilnOptions"/>, the <see cref="KilnVmRegistry"/> of VMs the host owns, and the hosted
    /// service that stops them when the host stops. Logging comes from the host's <c>ILoggerFactory</c>; the
    /// telemetry names to give OpenTelemetry are in <see cref="KilnTelemetryNames"/>.
    /// </summary>
    public static IServiceCollection AddKiln(this IServiceCollection services, Action<KilnOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<KilnOptions>();
        if (configure is not null)
            options.Configure(configure);
        options.Validate(o => o.GuestShutdownTimeout >= TimeSpan.Zero && o.TerminateTimeout >= TimeSpan.Zero,
            $"{nameof(KilnOptions.GuestShutdownTimeout)} and {nameof(KilnOptions.TerminateTimeout)} must not be negative.");
        services.TryAddSingleton<KilnVmRegistry>();
        services.AddHostedService<KilnHostedService>();
        return services;
    }

    /// <summary>As <see cref="AddKiln(IServiceCollection, Action{KilnOptions}?)"/>, with options bound from <paramref name="configuration"/> (e.g. <c>builder.Configuration.GetSection("Kiln")</c>) first.</summary>
    [RequiresDynamicCode("Binding configuration to KilnOptions uses reflection unless the configuration binding source generator is enabled.")]
    [RequiresUnreferencedCode("Binding configuration to KilnOptions uses reflection unless the configuration binding source generator is enabled.")]
    public static IServiceCollection AddKiln(this IServiceCollection services, IConfiguration configuration, Action<KilnOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<KilnOptions>().Bind(configuration);
        return services.AddKiln(configure);
    }
}
