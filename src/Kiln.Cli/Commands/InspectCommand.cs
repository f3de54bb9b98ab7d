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
                [.. info.PoolSlots.Select(Sandboxes.Slot)], [.. info.Devices.Select(Sandboxes.Device)], vmConfig, vmConfigError,
                RootDevice(info.Config),
                Jail(info.Config, info.Id, info.Pid))
            {
                Network = info.Config.Network is null ? null : NetworkOf(info.Id),
                ExitCode = info.ExitCode,
                ExitSignal = info.ExitSignal,
                ConsoleKeeperPid = info.ConsoleKeeperPid,
                StateInDoubt = info.StateInDoubt,
            };
            if (context.Json)
            {
                Output.WriteJson(result, CliJsonContext.Default.InspectJson);
                return ExitCodes.Success;
            }
            Render(result);
            return ExitCodes.Success;
        });
    }

    private static NetworkJson? NetworkOf(string id) =>
        new Kiln.Host.Network.SandboxNetworks().Get(id) is { } n
            ? new NetworkJson(n.Mode.ToString().ToLowerInvariant(), n.NamespacePath, n.NamespaceCreatedByKiln, n.TapName, n.TapAddress?.ToString(),
                n.GuestAddress?.ToString(), n.GuestMac, n.HostVeth, n.HostVethAddress?.ToString(), n.NamespaceVethAddress?.ToString(), n.KernelIpArgument)
            : null;

    /// <summary>The root= a start of this configuration passes (the driver's own choice, made again from the image).</summary>
    private static RootDeviceJson RootDevice(HypervisorConfig config)
    {
        try
        {
            var choice = Kiln.Vm.RootDevice.Choose(config.ImagePath, config.KernelParams.Select(p => (p.Key, p.Value)));
            return new RootDeviceJson(choice.Device, choice.Reason.ToString(), choice.Explanation);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // inspect still shows the rest; why the image could not be read is the answer here.
            return new RootDeviceJson(null, "Unreadable", $"unknown (cannot read {config.ImagePath}: {e.Message})");
        }
    }

    // The jail as it is now: the chroot Kiln gives the jailer, and each cgroup value asked for beside what the kernel
    // reports (nothing once the VMM and its cgroup are gone).
    private static JailJson? Jail(HypervisorConfig config, string id, int? pid)
    {
        if (config.Jail is not { } jail)
            return null;
        var layout = JailLayout.For(jail, config.FirecrackerPath, FirecrackerHypervisor.InstanceId(id));
        return new JailJson(jail.JailerPath, layout.Root, layout.ApiSocketOnHost, jail.Uid, jail.Gid, (int)jail.CgroupVersion, jail.NewPidNamespace,
            jail.NetworkNamespacePath, pid,
            [.. JailedVmm.CgroupsFor(jail, layout).Select(c => new JailCgroupJson(c.Directory, c.File, c.Requested, c.ReadBack()))]);
    }

    private static void Render(InspectJson r)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        void Row(string key, string? value) => grid.AddRow($"[bold]{Markup.Escape(key)}[/]", Markup.Escape(value ?? "-"));
        Row("Name", r.Name);
        grid.AddRow("[bold]State[/]", PsCommand.StateMarkup(r.State)
            + (r.StateInDoubt ? Markup.Escape(" (in doubt: a pause or resume got no answer; the next command asks Firecracker)") : ""));
        if (r.ExitCode is not null || r.ExitSignal is not null)
            Row("Exit", r.ExitCode is { } code ? $"exit code {code}" : $"killed by signal {r.ExitSignal}");
        Row("Ownership", r.Ownership == VmmOwnership.Detached ? "detached (own session, owned by the state directory)" : "owned (dies with the kiln that started it)");
        Row("Pid", r.Pid?.ToString());
        if (r.Ownership == VmmOwnership.Detached)
            Row("Console keeper", r.ConsoleKeeperPid is { } keeper ? $"pid {keeper} (bounds {r.Paths.Console})" : "none running");
        Row("Started", r.StartedAt?.ToString("u"));
        Row("Uptime", Output.Uptime(r.UptimeSeconds));
        Row("Directory", r.Paths.Directory);
        Row("API socket", r.Paths.Socket);
        Row("Console", r.Paths.Console);
        Row("Firecracker log", r.Paths.VmmLog);
        if (r.Config.Restore is { } restore)
            Row("Restored from", restore.Template is { } t ? $"template {t} ({restore.TemplateDirectory})" : $"snapshot {restore.SnapshotStatePath} + {restore.SnapshotMemoryPath}");
        Row("Firecracker", r.Config.FirecrackerPath);
        Row("Kernel", r.Config.KernelPath);
        Row("Initrd", r.Config.InitrdPath);
        Row("Rootfs", r.Config.RootfsPath is null ? null : $"{r.Config.RootfsPath} ({(r.Config.RootfsReadOnly ? "ro" : "rw")})");
        Row("Root device", r.RootDevice.Explanation);
        Row("Kernel args", string.Join(' ', r.Config.KernelArgs));
        Row("vCPUs", r.Config.Vcpus.ToString());
        Row("Memory", $"{r.Config.MemoryMiB} MiB");
        Row("Stop timeout", $"{r.Config.StopTimeoutSeconds} s");
        if (r.Jail is { } jail)
        {
            Row("Jail", $"{jail.Chroot} (uid {jail.Uid}, gid {jail.Gid}{(jail.NewPidNamespace ? ", own PID namespace" : "")}{(jail.NetworkNamespace is null ? "" : ", netns " + jail.NetworkNamespace)})");
            Row("Jailer", jail.Jailer);
            Row("VMM pid (host)", jail.Pid?.ToString());
            foreach (var c in jail.Cgroups)
                Row($"cgroup v{jail.CgroupVersion} {c.File}", $"{c.Current ?? "(gone)"} (asked {c.Requested}) in {c.Directory}");
        }
        Output.Write(grid);

        var slots = Output.NewTable("SLOT", "DRIVE", "GUEST DEVICE", "HOST PATH", "MODE");
        foreach (var s in r.PoolSlots)
            slots.AddRow(s.Slot.ToString(), Markup.Escape(s.DriveId), Markup.Escape(s.GuestDevice), Markup.Escape((s.HostPath ?? "(empty)") + (s.InDoubt ? " (in doubt: the next command asks Firecracker)" : "")), s.ReadOnly ? "ro" : "rw");
        Output.Section("Block pool");
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
        Output.Section("Boot devices");
        if (r.Devices.Count == 0)
            Output.WriteLine("(none)");
        else
            Output.Write(devices);

        Output.Section("Network");
        if (r.Network is { } n)
        {
            var net = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
            void NetRow(string key, string? value) => net.AddRow($"[bold]{Markup.Escape(key)}[/]", Markup.Escape(value ?? "-"));
            NetRow("Mode", n.Mode);
            NetRow("Namespace", n.Namespace is null ? null : $"{n.Namespace}{(n.NamespaceCreatedByKiln ? " (Kiln's)" : " (yours)")}");
            NetRow("TAP", n.Tap is null ? null : $"{n.Tap} {n.TapAddress}");
            NetRow("Guest", $"{n.GuestAddress} mac {n.GuestMac}");
            if (n.HostVeth is not null)
                NetRow("veth", $"{n.HostVeth} {n.HostVethAddress} <-> {n.NamespaceVethAddress}");
            NetRow("Kernel arg", n.KernelIpArgument);
            Output.Write(net);
        }
        else
        {
            Output.WriteLine("(none)");
        }

        Output.Section("Firecracker /vm/config");
        if (r.VmConfig is { } config)
            Output.WriteLine(JsonSerializer.Serialize(config, CliJsonContext.Default.JsonElement));
        else
            Output.WriteLine(r.VmConfigError is null ? "(not running)" : $"(unavailable: {r.VmConfigError})");
    }
}
