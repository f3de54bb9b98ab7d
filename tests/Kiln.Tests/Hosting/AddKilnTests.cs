using Kiln.Hosting;
using Kiln.Tests.Support;
using Kiln.Tests.Vm;
using Kiln.Vm;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kiln.Tests.Hosting;

public sealed class AddKilnTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IHost Host(Dictionary<string, string?> settings)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddLogging();
        builder.Services.AddKiln(builder.Configuration.GetSection(KilnOptions.SectionName));
        return builder.Build();
    }

    [Fact]
    public void Options_are_bound_from_the_kiln_configuration_section()
    {
        using var host = Host(new() { ["Kiln:GuestShutdownTimeout"] = "00:00:03", ["Kiln:GracefulGuestShutdown"] = "false" });

        var options = host.Services.GetRequiredService<IOptions<KilnOptions>>().Value;

        Assert.Equal(TimeSpan.FromSeconds(3), options.GuestShutdownTimeout);
        Assert.Equal(ShutdownActionKind.Terminate, options.DefaultShutdownPlan.Actions[0].Kind);
    }

    [Fact]
    public async Task Stopping_the_host_stops_its_vms_by_their_shutdown_plans()
    {
        using var root = new TempRoot();
        using var host = Host(new() { ["Kiln:GuestShutdownTimeout"] = "00:00:20" });
        await host.StartAsync(Ct);
        var registry = host.Services.GetRequiredService<KilnVmRegistry>();
        var graceful = await registry.BootAsync(MicrovmFixture.Description(root), MicrovmFixture.Options(root), cancellationToken: Ct);
        using var root2 = new TempRoot();
        var killed = await registry.BootAsync(MicrovmFixture.Description(root2), MicrovmFixture.Options(root2), ShutdownPlan.Kill(), cancellationToken: Ct);

        await host.StopAsync(Ct);

        // The default plan asks the guest first: reboot=k ends Firecracker with exit 0 after Ctrl-Alt-Del.
        Assert.Equal(new Kiln.Vmm.VmmProcessState.Exited(0), await graceful.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal(new Kiln.Vmm.VmmProcessState.Crashed(9), await killed.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Empty(registry.Vms);
    }

    [Fact]
    public void The_telemetry_names_are_kilns_meter_and_firecrackers()
    {
        Assert.Equal(["Kiln", "Kiln.Firecracker"], KilnTelemetryNames.Meters);
        Assert.Equal("Kiln", KilnTelemetryNames.ActivitySource);
    }
}
