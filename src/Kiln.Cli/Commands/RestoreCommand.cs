// `kiln restore [NAME] --snapshot STATE --mem MEM`: a new sandbox whose VM is loaded from snapshot files (what
// `kiln snapshot` writes) instead of booted, with the v1.16 load options. It is a sandbox as any other (ps, inspect,
// exec, stop, rm; a restart loads the snapshot again) and runs detached. The restored VM opens the drive paths the
// snapshot recorded, so it shares writable drives with the VM the snapshot came from, unless --drive-at gives it a
// file of its own for a recorded path (bound over it in the VMM's mount namespace, or made there in a jail); a template
// (kiln run --template) does that for every writable drive. With --jail (the options of kiln run) the VMM sees only
// its chroot: every drive the snapshot recorded needs --drive-at (writable) or --shared-drive (read-only).
using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Kiln.Vmm;

namespace Kiln.Cli.Commands;

internal static class RestoreCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var nameArgument = new Argument<string?>("name") { Description = "The new sandbox's name (default: --name, else kiln-<8 hex>).", Arity = ArgumentArity.ZeroOrOne };
        var nameOption = new Option<string?>("--name") { Description = "The new sandbox's name (as the NAME argument)." };
        var snapshot = new Option<string>("--snapshot") { Description = "The snapshot's state file (kiln snapshot prints it).", Required = true };
        var memory = new Option<string>("--mem") { Description = "The snapshot's memory file, mapped privately (mem_backend File).", Required = true };
        var vsock = new Option<uint?>("--vsock") { Description = "The snapshot's vsock (its guest CID) gets this sandbox's own socket (vsock_override); default: as the source sandbox had, when the snapshot is one of a sandbox under --root." };
        var networkOverrides = new Option<string[]>("--network-override") { Description = "IFACE=TAP: the snapshot's interface IFACE uses host TAP device TAP (network_overrides; repeatable).", DefaultValueFactory = _ => [] };
        var trackDirtyPages = new Option<bool>("--track-dirty-pages") { Description = "Track dirty pages, so that 'kiln snapshot --diff' can take diff snapshots of it." };
        var clockRealtime = new Option<bool>("--clock-realtime") { Description = "x86_64: advance the guest clock by the time since the snapshot (clock_realtime)." };
        var paused = new Option<bool>("--paused") { Description = "Leave the VM Paused after the load (resume it with 'kiln resume')." };
        var firecracker = new Option<string?>("--firecracker") { Description = "firecracker binary (default: $KILN_FIRECRACKER, else firecracker on PATH); the release that wrote the snapshot." };
        var driveAt = new Option<string[]>("--drive-at")
        {
            Description = "RECORDED=FILE: FILE is this sandbox's drive where the snapshot recorded the path RECORDED (its own copy; repeatable).",
            DefaultValueFactory = _ => [],
        };
        var sharedDrives = new Option<string[]>("--shared-drive")
        {
            Description = "RECORDED: a read-only drive of the snapshot, shared as it is (with --jail, made visible in the chroot; repeatable).",
            DefaultValueFactory = _ => [],
        };
        var stopTimeout = new Option<double>("--stop-timeout")
        {
            Description = "Seconds 'kiln stop' waits between SIGTERM and SIGKILL (0-3600).",
            DefaultValueFactory = _ => HypervisorConfig.DefaultStopTimeout.TotalSeconds,
        };
        vsock.Check(value => value is < 3 ? "--vsock: guest CIDs 0-2 are reserved; use 3 or more." : null);
        stopTimeout.Check(value => value is < 0 or > 3600 || double.IsNaN(value) ? "--stop-timeout must be between 0 and 3600 seconds." : null);

        var jail = new JailSpecs();
        jail.Cpus.Check(value => value is { } cpus && (double.IsNaN(cpus) || cpus <= 0) ? "--cpus must be a positive number of CPUs, e.g. 1.5." : null);
        var command = new Command("restore", "Start a sandbox from snapshot files (kiln snapshot) instead of booting it.")
        {
            nameArgument, nameOption, snapshot, memory, vsock, networkOverrides, trackDirtyPages, clockRealtime, paused, firecracker, stopTimeout,
            driveAt, sharedDrives,
        };
        foreach (var option in jail.All)
            command.Options.Add(option);
        return command.WithAction(globals, async (context, cancellationToken) =>
        {
            var argumentName = context.Value(nameArgument);
            var optionName = context.Value(nameOption);
            if (argumentName is not null && optionName is not null && argumentName != optionName)
                throw new UsageException($"two names given ('{argumentName}' and --name '{optionName}'): give one.");
            var name = argumentName ?? optionName ?? RunCommand.GenerateName();
            Sandboxes.ValidateName(name, context.Root);
            var statePath = Specs.RequireFile(context.Value(snapshot)!, "--snapshot");
            var memoryPath = Specs.RequireFile(context.Value(memory)!, "--mem");
            var overrides = (context.Value(networkOverrides) ?? []).Select(ParseNetworkOverride).ToList();
            var drives = ParseDriveBindings(context.Value(driveAt) ?? [], context.Value(sharedDrives) ?? []);
            var firecrackerPath = FirecrackerLocator.Require(context.Value(firecracker)).Path;
            var jailSettings = jail.Build(context, firecrackerPath);
            if (await RunCommand.ExistsAsync(context.Root, name, cancellationToken))
                throw new CliFailureException($"a sandbox named '{name}' already exists under {context.Root} (remove it with 'kiln rm {name}').");

            // A snapshot kiln took lies in its sandbox's directory: that sandbox says what the machine is.
            var source = await SourceSandboxAsync(context.Root, statePath, cancellationToken);
            var cid = context.Value(vsock) ?? source?.Devices.OfType<VsockDevice>().FirstOrDefault()?.GuestCid;
            var config = new HypervisorConfig
            {
                FirecrackerPath = firecrackerPath,
                KernelPath = source?.Config.KernelPath ?? "",
                InitrdPath = source?.Config.InitrdPath,
                ImagePath = source?.Config.ImagePath,
                KernelParams = source?.Config.KernelParams ?? [],
                VcpuCount = source?.Config.VcpuCount ?? 1,
                MemoryMiB = source?.Config.MemoryMiB ?? 128,
                BlockPoolSize = 0,
                StopTimeout = TimeSpan.FromSeconds(context.Value(stopTimeout)),
                RootDirectory = context.Root,
                Restore = SandboxRestore.FromSnapshot(statePath, memoryPath) with
                {
                    TrackDirtyPages = context.Value(trackDirtyPages),
                    ClockRealtime = context.Value(clockRealtime),
                    Resume = !context.Value(paused),
                    Drives = drives,
                },
                Jail = jailSettings,
            };

            Directory.CreateDirectory(context.Root);
            await using var hypervisor = new FirecrackerHypervisor(context.HypervisorOptions(VmmOwnership.Detached));
            await hypervisor.CreateAsync(name, config, cancellationToken);
            if (hypervisor.State is not SandboxState.Created)
                throw new CliFailureException($"a sandbox named '{name}' already exists under {context.Root} (remove it with 'kiln rm {name}').");
            try
            {
                if (cid is { } guestCid)
                    await hypervisor.AddDeviceAsync(new VsockDevice(guestCid, Path.Combine(hypervisor.SandboxDirectory, "vsock.sock")), cancellationToken);
                foreach (var (iface, tap) in overrides)
                    await hypervisor.AddDeviceAsync(new NetworkDevice(tap) { Id = iface }, cancellationToken);
                await context.Output.ProgressAsync($"Restoring {name}…", () => hypervisor.StartAsync(cancellationToken));
            }
            catch
            {
                // Create and restore are one step: a sandbox that never ran does not keep its name.
                try
                {
                    await hypervisor.CleanupAsync(CancellationToken.None);
                }
                catch (Exception e) when (e is SandboxException or IOException)
                {
                    context.Output.Note($"warning: cleaning up after the failed restore left something behind: {e.Message}");
                }
                throw;
            }

            if (context.Json)
            {
                Output.WriteJson(
                    new RunResultJson(name, hypervisor.State, hypervisor.Pid, hypervisor.SandboxDirectory, hypervisor.SocketPath, hypervisor.ConsolePath),
                    CliJsonContext.Default.RunResultJson);
            }
            else
            {
                Output.WriteLine(name);
            }
            return ExitCodes.Success;
        });
    }

    /// <summary>
    /// <c>--drive-at RECORDED=FILE</c> (this sandbox's own file) and <c>--shared-drive RECORDED</c> (read-only, the file
    /// at that path itself): absolute paths, each recorded path named once, each file there.
    /// </summary>
    internal static IReadOnlyList<Kiln.Vm.DriveBinding> ParseDriveBindings(IEnumerable<string> own, IEnumerable<string> shared)
    {
        var bindings = new List<Kiln.Vm.DriveBinding>();
        foreach (var spec in own)
        {
            var parts = spec.Split('=', 2);
            if (parts is not [{ Length: > 0 } recorded, { Length: > 0 } file])
                throw new UsageException($"--drive-at '{spec}': expected RECORDED=FILE, e.g. /srv/data.img=./my-data.img.");
            bindings.Add(new Kiln.Vm.DriveBinding(RecordedPath(recorded, "--drive-at", spec), Specs.RequireFile(file, "--drive-at")));
        }
        foreach (var recorded in shared)
        {
            var path = RecordedPath(recorded, "--shared-drive", recorded);
            bindings.Add(new Kiln.Vm.DriveBinding(path, Specs.RequireFile(path, "--shared-drive")) { ReadOnly = true });
        }
        var twice = bindings.GroupBy(b => b.RecordedPath, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null)
            throw new UsageException($"the recorded path {twice.Key} is given twice (--drive-at, --shared-drive): give it once.");
        return bindings;
    }

    // The path as the snapshot recorded it: absolute, with no . or .. parts (it is recreated inside a jail's chroot).
    private static string RecordedPath(string path, string option, string spec) =>
        Kiln.Vm.DriveBinding.IsPlainAbsolutePath(path)
            ? path
            : throw new UsageException($"{option} '{spec}': the recorded path '{path}' must be absolute, without . or .. parts, as the snapshot recorded it.");

    /// <summary><c>IFACE=TAP</c>: an interface id of the snapshot and a host TAP name.</summary>
    internal static (string Iface, string Tap) ParseNetworkOverride(string spec)
    {
        var parts = spec.Split('=', 2);
        if (parts is not [{ Length: > 0 } iface, { Length: > 0 } tap])
            throw new UsageException($"--network-override '{spec}': expected IFACE=TAP, e.g. eth0=tap7.");
        if (!Kiln.Vm.MachineDescription.IsResourceId(iface))
            throw new UsageException($"--network-override '{spec}': '{iface}' is not a Firecracker interface id (letters, digits and underscores only).");
        if (Specs.TapNameProblem(tap) is { } problem)
            throw new UsageException($"--network-override '{spec}': TAP name '{tap}': {problem}.");
        return (iface, tap);
    }

    private static async Task<SandboxInfo?> SourceSandboxAsync(string root, string statePath, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(statePath);
        if (directory is null || Path.GetDirectoryName(directory) != Path.GetFullPath(root).TrimEnd('/'))
            return null;
        var id = Path.GetFileName(directory);
        if (!SandboxIds.IsValid(id, root, out _))
            return null;
        try
        {
            return await SandboxCatalog.GetAsync(root, id, cancellationToken);
        }
        catch (SandboxNotFoundException)
        {
            return null;
        }
    }
}
