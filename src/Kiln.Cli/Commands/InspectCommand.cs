using System.CommandLine;
using System.Text.Json;
using Kiln.Api;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Spectre.Console;
using Kiln.Vmm;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln inspect</c>: the configuration, paths, pool slots, boot devices and (when running) Firecracker's /vm/config.</summary>
internal static class InspectCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var name = CommandExtensions.NameArgument();
        return new Command("inspect", "Show everything known about a sandbox.") { name }.WithAction(globals, async (context, cancellationToken) =>
        {
            var info = await Sandboxes.GetAsync(context, context.Value(name), cancellationToken);
            JsonElement? vmConfig = null;
            string? vmConfigError = null;
            if (info.State is SandboxState.Running or SandboxState.Paused)
            {
                try
                {
                    await using var hypervisor = await Sandboxes.OpenAsync(context, info.Id, cancellationToken);
                    if (hypervisor.Api is { } api)
                        vmConfig = VmConfigJson.ToElement(await api.GetExportVmConfigAsync(cancellationToken));
                }
                catch (Exception e) when (e is FirecrackerException or SandboxException or IOException or TimeoutException)
                {
                    // inspect still shows what is on disk; the failure to reach the VMM is part of the answer.
                    vmConfigError = e is FirecrackerApiException { FaultMessage: { } fault } ? fault : e.Message;
                }
            }
            var now = context.Time.GetUtcNow();
            var result = new InspectJson(
                info.Id, info.State, info.Ownership, info.Pid, info.StartedAt, Sandboxes.UptimeSeconds(info.State, info.StartedAt, now),
                new PathsJson(info.Directory, info.SocketPath, info.ConsolePath, info.VmmLogPath), Sandboxes.Config(info.Config),
                [.. info.PoolSlots.Select(Sandboxes.Slot)], [.. info.Devices.Select(Sandboxes.Device)], vmConfig, vmConfigError);
            if (context.Json)
            {
                Output.WriteJson(result, CliJsonContext.Default.InspectJson);
                return ExitCodes.Success;
            }
            Render(result);
            return ExitCodes.Success;
        });
    }

    private static void Render(InspectJson r)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        void Row(string key, string? value) => grid.AddRow($"[bold]{Markup.Escape(key)}[/]", Markup.Escape(value ?? "-"));
        Row("Name", r.Name);
        grid.AddRow("[bold]State[/]", PsCommand.StateMarkup(r.State));
        Row("Ownership", r.Ownership == VmmOwnership.Detached ? "detached (own session, owned by the state directory)" : "owned (dies with the kiln that started it)");
        Row("Pid", r.Pid?.ToString());
        Row("Started", r.StartedAt?.ToString("u"));
        Row("Uptime", Output.Uptime(r.UptimeSeconds));
        Row("Directory", r.Paths.Directory);
        Row("API socket", r.Paths.Socket);
        Row("Console", r.Paths.Console);
        Row("Firecracker log", r.Paths.VmmLog);
        Row("Firecracker", r.Config.FirecrackerPath);
        Row("Kernel", r.Config.KernelPath);
        Row("Initrd", r.Config.InitrdPath);
        Row("Rootfs", r.Config.RootfsPath is null ? null : $"{r.Config.RootfsPath} ({(r.Config.RootfsReadOnly ? "ro" : "rw")})");
        Row("Kernel args", string.Join(' ', r.Config.KernelArgs));
        Row("vCPUs", r.Config.Vcpus.ToString());
        Row("Memory", $"{r.Config.MemoryMiB} MiB");
        Row("Stop timeout", $"{r.Config.StopTimeoutSeconds} s");
        Output.Write(grid);

        var slots = Output.NewTable("SLOT", "DRIVE", "GUEST DEVICE", "HOST PATH", "MODE");
        foreach (var s in r.PoolSlots)
            slots.AddRow(s.Slot.ToString(), Markup.Escape(s.DriveId), Markup.Escape(s.GuestDevice), Markup.Escape(s.HostPath ?? "(empty)"), s.ReadOnly ? "ro" : "rw");
        Output.Write(new Rule("Block pool") { Justification = Justify.Left });
        Output.Write(slots);

        var devices = Output.NewTable("KIND", "ID", "HOST", "DETAIL");
        foreach (var d in r.Devices)
        {
            var (host, detail) = d.Kind switch
            {
                "block" => (d.HostPath, d.ReadOnly == true ? "ro" : "rw"),
                "network" => (d.TapName, d.MacAddress is null ? "" : "mac " + d.MacAddress),
                "vsock" => (d.UdsPath, $"cid {d.GuestCid}"),
                _ => (null, ""),
            };
            devices.AddRow(Markup.Escape(d.Kind), Markup.Escape(d.Id ?? "-"), Markup.Escape(host ?? "-"), Markup.Escape(detail));
        }
        Output.Write(new Rule("Boot devices") { Justification = Justify.Left });
        if (r.Devices.Count == 0)
            Output.WriteLine("(none)");
        else
            Output.Write(devices);

        Output.Write(new Rule("Firecracker /vm/config") { Justification = Justify.Left });
        if (r.VmConfig is { } config)
            Output.WriteLine(JsonSerializer.Serialize(config, CliJsonContext.Default.JsonElement));
        else
            Output.WriteLine(r.VmConfigError is null ? "(not running)" : $"(unavailable: {r.VmConfigError})");
    }
}
