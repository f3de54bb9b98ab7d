// `kiln run --template TEMPLATE [--count N] [--name PREFIX]`: N sandboxes, each a clone of the template restored by
// the driver (HypervisorConfig.Restore), so ps, inspect, exec, stop and rm handle them as any sandbox. They start one
// after another, all or nothing: when one fails (or Ctrl-C), every clone of this run is stopped and removed and the
// first error is what the user sees. Clones always run detached: the command returns once all of them run. With
// --jail each clone runs under the jailer, in a chroot of its own holding its drive copies and the snapshot's files.
using System.CommandLine;
using Kiln.Cli.Infrastructure;
using Kiln.Sandbox;
using Kiln.Vm.Templates;
using Kiln.Vmm;
using Spectre.Console;

namespace Kiln.Cli.Commands;

internal sealed record TemplateRunRequest(string Template, int Count, string? Name, string? Firecracker, TimeSpan StopTimeout)
{
    /// <summary><c>--network</c>: each clone's own network when the template's machine has an interface (default isolated).</summary>
    public string? Network { get; init; }

    /// <summary><c>--jail …</c>: each clone under the jailer, its drives and snapshot files inside its own chroot.</summary>
    public JailSpecs? Jail { get; init; }
}

internal static class RunTemplate
{
    /// <summary>The most clones one run starts (each is a VMM with its own drive copies).</summary>
    public const int MaxCount = 1000;

    /// <summary>The sandbox names: NAME for one clone, PREFIX-1 … PREFIX-N for several, kiln-&lt;hex&gt; each without --name.</summary>
    public static IReadOnlyList<string> Names(string? name, int count) =>
        count == 1 ? [name ?? RunCommand.GenerateName()]
        : [.. Enumerable.Range(1, count).Select(i => name is null ? RunCommand.GenerateName() : $"{name}-{i}")];

    /// <summary>
    /// The network every clone gets: none for a machine without an interface; for one with an interface, a network of
    /// each clone's own (--network, isolated by default) whose TAP the load puts in place of the recorded one. A clone
    /// keeps the template's guest MAC and address, so --ip is not asked (docs/driver.md, "Restored sandboxes").
    /// </summary>
    private static Kiln.Host.Network.SandboxNetworkSpec? CloneNetwork(string? mode, int interfaces, string template)
    {
        if (interfaces == 0)
        {
            if (mode is not null and not "none")
                throw new UsageException($"--network: template {template}'s machine has no network interface for a clone's network.");
            return null;
        }
        if (interfaces > 1)
            throw new CliFailureException($"template {template}'s machine has {interfaces} network interfaces; a clone gets one network, so only a template with one can be cloned.");
        if (mode is "none")
            throw new UsageException($"--network none: template {template}'s machine has a network interface, which a clone must back with a TAP: give --network isolated, nat or netns:PATH.");
        return Specs.ParseNetwork(mode ?? "isolated", ip: null);
    }

    /// <summary>How many pool slots (writable drive_0 … drive_N-1) the template's source had.</summary>
    private static int TemplatePoolSize(TemplateManifest manifest)
    {
        var size = 0;
        while (manifest.Drives.Any(d => !d.IsReadOnly && d.DriveId == Kiln.Vm.BlockPool.DriveIdFor(size)))
            size++;
        return size;
    }

    public static async Task<int> RunAsync(CommandContext context, TemplateRunRequest request, IEnumerable<Option> bootOnly, CancellationToken cancellationToken)
    {
        // The machine is the template's: what would describe another one is refused, not silently ignored.
        if (bootOnly.FirstOrDefault(o => context.Parse.GetResult(o) is { Implicit: false }) is { } stray)
            throw new UsageException($"{stray.Name} describes a machine to boot; a clone is the template's machine: drop {stray.Name} or --template.");
        if (request.Count is < 1 or > MaxCount)
            throw new UsageException($"--count must be between 1 and {MaxCount}, not {request.Count}.");
        if (!TemplateStore.IsValidName(request.Template))
            throw new UsageException($"'{request.Template}' is not a template name (1 to 64 letters, digits, '-' and '_', not starting with '-').");
        var names = Names(request.Name, request.Count);
        foreach (var name in names)
            Sandboxes.ValidateName(name, context.Root);
        var firecrackerPath = FirecrackerLocator.Require(request.Firecracker).Path;
        var jail = request.Jail?.Build(context, firecrackerPath);
        var template = TemplateCommands.Store(context).Open(request.Template);
        foreach (var name in names)
        {
            if (await RunCommand.ExistsAsync(context.Root, name, cancellationToken))
                throw new CliFailureException($"a sandbox named '{name}' already exists under {context.Root} (remove it with 'kiln rm {name}').");
        }
        // Checked once here, before any sandbox exists: the usual refusal (another Firecracker release, a changed
        // file) then leaves nothing to clean up. Each clone's start checks again.
        await template.VerifyAsync(firecrackerPath, jailed: jail is not null, cancellationToken);
        var machine = await template.ReadVmConfigurationAsync(cancellationToken);
        var network = CloneNetwork(request.Network, machine.NetworkInterfaces?.Count ?? 0, template.Name);
        if (jail?.NetworkNamespacePath is not null && network is not null)
            throw new UsageException("--netns and a clone's network both choose the VMM's network namespace: the template's machine has an interface, so drop --netns.");
        var config = new HypervisorConfig
        {
            FirecrackerPath = firecrackerPath,
            // A record of the machine the template was made from; a restore boots no kernel.
            KernelPath = machine.BootSource?.KernelImagePath ?? "",
            InitrdPath = machine.BootSource?.InitrdPath,
            VcpuCount = template.Manifest.VcpuCount,
            MemoryMiB = (int)template.Manifest.MemSizeMib,
            // The template's placeholders, copied per clone, are the clone's hot-plug pool (kiln drive add).
            BlockPoolSize = TemplatePoolSize(template.Manifest),
            StopTimeout = request.StopTimeout,
            RootDirectory = context.Root,
            Restore = SandboxRestore.FromTemplate(template.Directory),
            Network = network,
            Jail = jail,
        };

        Directory.CreateDirectory(context.Root);
        var started = new List<FirecrackerHypervisor>();
        var t0 = context.Time.GetTimestamp();
        try
        {
            await ProgressAsync(context.Output, $"Starting {names.Count} clone{(names.Count == 1 ? "" : "s")} of {template.Name}", names.Count, async advance =>
            {
                foreach (var name in names)
                {
                    var hypervisor = new FirecrackerHypervisor(context.HypervisorOptions(VmmOwnership.Detached));
                    try
                    {
                        await hypervisor.CreateAsync(name, config, cancellationToken);
                    }
                    catch
                    {
                        await hypervisor.DisposeAsync();
                        throw;
                    }
                    // Another kiln got this name between the check above and now: its sandbox is not ours to remove.
                    if (hypervisor.State is not SandboxState.Created)
                    {
                        await hypervisor.DisposeAsync();
                        throw new CliFailureException($"a sandbox named '{name}' already exists under {context.Root} (remove it with 'kiln rm {name}').");
                    }
                    started.Add(hypervisor);
                    await hypervisor.StartAsync(cancellationToken);
                    advance();
                }
            });
        }
        catch
        {
            await RemoveAllAsync(context.Output, started);
            throw;
        }

        var elapsed = context.Time.GetElapsedTime(t0);
        try
        {
            if (context.Json)
            {
                Output.WriteJson<IReadOnlyList<CloneResultJson>>([.. started.Select(h => new CloneResultJson(
                    h.SandboxId!, h.State, h.Pid, h.SandboxDirectory, h.SocketPath, h.ConsolePath,
                    h.Devices.OfType<VsockDevice>().FirstOrDefault()?.UdsPath, template.Name))], CliJsonContext.Default.IReadOnlyListCloneResultJson);
            }
            else
            {
                foreach (var h in started)
                    Output.WriteLine(h.SandboxId!);
                context.Output.Note($"kiln: started {started.Count} clone{(started.Count == 1 ? "" : "s")} of {template.Name} in {elapsed.TotalMilliseconds:0} ms.");
            }
        }
        finally
        {
            foreach (var h in started)
                await h.DisposeAsync(); // detached: the VMMs keep running
        }
        return ExitCodes.Success;
    }

    /// <summary>A progress bar on a terminal; piped or with --json, nothing (stdout stays the result alone).</summary>
    private static async Task ProgressAsync(Output output, string description, int total, Func<Action, Task> work)
    {
        if (!output.Interactive)
        {
            await work(() => { });
            return;
        }
        await AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask(Markup.Escape(description), maxValue: total);
                await work(() => task.Increment(1));
            });
    }

    // All or nothing: every clone this run made goes, also a half-started one. A clean-up failure does not replace
    // the start's error; what it left behind is named in a note.
    private static async Task RemoveAllAsync(Output output, IEnumerable<FirecrackerHypervisor> clones)
    {
        foreach (var hypervisor in clones)
        {
            try
            {
                await hypervisor.StopAsync(TimeSpan.Zero, CancellationToken.None);
                await hypervisor.CleanupAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is SandboxException or IOException or InvalidOperationException)
            {
                output.Note($"warning: removing clone '{hypervisor.SandboxId}' after the failed run left something behind: {e.Message}");
            }
            finally
            {
                await hypervisor.DisposeAsync();
            }
        }
    }
}
