// Boot: the named steps (version, stale-files, the caller's preparation, [config-file], spawn, api-ready, the
// BootPlan's API steps, running), each a trace span, run by the StartAttempt a restore shares. Any failure — an API
// answer, the VMM dying, a deadline, cancellation — kills the VMM, removes what this boot created and throws
// MicrovmBootException with the step, Firecracker's fault message and the tail of its log and output.
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>The prefix of every boot step's span name (the names tracing dashboards know).</summary>
    public const string StepSpanPrefix = "kiln.sandbox.start.";

    /// <summary>Spawns Firecracker, configures it as <paramref name="description"/> says and waits until the VM runs.</summary>
    /// <exception cref="MachineDescriptionException">The description is invalid (nothing was started).</exception>
    /// <exception cref="ArgumentException">The options are invalid (nothing was started).</exception>
    /// <exception cref="MicrovmBootException">A step failed; the VMM was killed and what the boot created removed.</exception>
    public static async Task<Microvm> BootAsync(MachineDescription description, MicrovmOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(options);
        if (description.Jail is { } netJail && options.NetworkNamespacePath is { } netns)
        {
            // A jailed VMM joins its network namespace through the jailer's own --netns, not nsenter.
            if (netJail.NetworkNamespacePath is { } jailNetns && jailNetns != netns)
                throw new MachineDescriptionException(nameof(MachineDescription.Jail), $"the jail's network namespace {jailNetns} is not the VMM's {netns}");
            description = description with { Jail = netJail with { NetworkNamespacePath = netns } };
            options = options with { NetworkNamespacePath = null };
        }
        description.Validate();
        if (description.Jail is { } jailSettings)
            options = JailedOptions(options, jailSettings);
        options.Validate();
        var apiDescription = description.Jail is null ? description : InJail(description).Description;
        var logger = options.CreateLogger();
        var time = options.TimeProvider;
        var attempt = new StartAttempt(options, logger, "boot", StepSpanPrefix);

        var steps = new List<BootStep>
        {
            // Before anything is created or spawned: an unsupported Firecracker, or one too old for a feature the
            // description asks for, is refused with a typed error (the answer is cached per binary).
            new("version", ct => FirecrackerVersionProbe.EnsureSupportedAsync(options.FirecrackerPath, RequiredFeatures(description), ct)),
            // A jail's socket and log are inside its chroot: the jail clears a stale tree and creates the log itself.
            new("stale-files", _ => attempt.RemoveStaleFiles(description.Vsock?.UdsPath, freshLog: description.Jail is null)),
        };
        steps.AddRange(options.Preparation);
        // A jailed VMM's document is written inside its chroot, with the paths it sees there, by the spawn step.
        if (options.StartPath == MicrovmStartPath.ConfigFile && description.Jail is null)
        {
            steps.Add(new("config-file", async ct =>
            {
                await ConfigFile.WriteAsync(description, options.EffectiveConfigFilePath, ct).ConfigureAwait(false);
                attempt.Created.Add(options.EffectiveConfigFilePath);
                if (description.MmdsDocument is { } document)
                {
                    // A config file has no metadata key: Firecracker takes the first document as --metadata.
                    await File.WriteAllTextAsync(MetadataPath(options), document.ToJsonString(), ct).ConfigureAwait(false);
                    attempt.Created.Add(MetadataPath(options));
                }
            }));
        }
        steps.Add(new("spawn", async ct =>
        {
            await attempt.SpawningAsync(ct).ConfigureAwait(false);
            if (description.Jail is not null)
            {
                var jailed = await LaunchJailedAsync(description, options, attempt, ct).ConfigureAwait(false);
                attempt.Vm = new Microvm(options, logger, jailed.Process, MicrovmState.Starting, description) { _jail = jailed, _jailLaunchedHere = true };
                if (description.Vsock is { } vsock)
                    LinkVsock(vsock.UdsPath, jailed.Layout);
                await attempt.SpawnedAsync(jailed.Pid, ct).ConfigureAwait(false);
                return;
            }

            var arguments = Arguments(options);
            if (options.StartPath == MicrovmStartPath.ConfigFile)
            {
                arguments = arguments with
                {
                    ConfigFilePath = options.EffectiveConfigFilePath,
                    MetadataPath = description.MmdsDocument is null ? null : MetadataPath(options),
                };
            }
            var input = attempt.CreateConsoleInput();
            attempt.AddConsoleKeeperFiles();
            var vmm = await VmmProcess.LaunchAsync(LaunchOptions(options, arguments) with { InputPath = input }, ct).ConfigureAwait(false);
            attempt.Vm = new Microvm(options, logger, vmm, MicrovmState.Starting, description);
            await attempt.SpawnedAsync(vmm.Pid, ct).ConfigureAwait(false);
        }));
        if (options.StartPath == MicrovmStartPath.Api)
        {
            // The socket accepting a connection is readiness (the connection is kept for machine-config), and
            // InstanceStart answers only once the vCPUs run (GET / then says Running): neither needs a GET / of its own.
            steps.Add(new("api-ready", ct => Readiness.WaitForListenerAsync(attempt.Vm._vmm, attempt.Vm.Client, options.SocketPath,
                options.ApiReadyTimeout, time, ct)));
            steps.AddRange(BootPlan.For(apiDescription).Bind(() => attempt.Vm.Client)); // the client exists once spawned
        }
        else
        {
            // The VMM applies the document on its own: GET / is what tells that it lives and, then, that the VM runs.
            steps.Add(new("api-ready", ct => Readiness.WaitForApiAsync(attempt.Vm._vmm, attempt.Vm.Client, options.SocketPath,
                options.ApiReadyTimeout, time, ct)));
            steps.Add(new("running", ct => Readiness.WaitForRunningAsync(attempt.Vm._vmm, attempt.Vm.Client, options.BootTimeout, time, ct)));
        }

        return await attempt.RunAsync(steps, MicrovmState.Running, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The Firecracker features a description needs beyond the oldest supported release.</summary>
    internal static IEnumerable<FirecrackerFeature> RequiredFeatures(MachineDescription description)
    {
        if (description.MemoryHotplug is not null)
            yield return FirecrackerFeature.MemoryHotplug;
        if (description.Balloon?.FreePageHinting == true)
            yield return FirecrackerFeature.BalloonFreePageHinting;
        if (description.Balloon?.FreePageReporting == true)
            yield return FirecrackerFeature.BalloonFreePageReporting;
    }

    /// <summary>What a failed boot reports of the VMM: its own log (why it refused) and its output (panics, the console).</summary>
    internal static string FailureTail(string output, string log) => (output.Length, log.Length) switch
    {
        (_, 0) => output,
        (0, _) => log,
        _ => $"{log.TrimEnd('\n')}\n--- output ---\n{output}",
    };

    /// <summary>The flags every unjailed start gives Firecracker: its socket, id, log and metrics.</summary>
    private static VmmArguments Arguments(MicrovmOptions options) =>
        new VmmArguments(options.SocketPath).WithId(options.Id).WithLog(options.LogPath) with { MetricsPath = options.MetricsPath };

    /// <summary>How every unjailed start launches the VMM; each adds what only it needs with <c>with</c>.</summary>
    private static VmmLaunchOptions LaunchOptions(MicrovmOptions options, VmmArguments arguments) => new()
    {
        ExecutablePath = options.FirecrackerPath,
        Arguments = arguments,
        OutputPath = options.ConsolePath,
        OutputRotation = options.ConsoleRotation,
        Detached = options.Ownership == VmmOwnership.Detached,
        Environment = options.Environment,
        WorkingDirectory = options.WorkingDirectory,
        NetworkNamespacePath = options.NetworkNamespacePath,
        ConsoleKeeper = options.Ownership == VmmOwnership.Detached ? options.ConsoleKeeper : null,
        TimeProvider = options.TimeProvider,
    };

    internal static void DeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private static string MetadataPath(MicrovmOptions options) => options.EffectiveConfigFilePath + ".mmds.json";
}
