// A library host that can be stopped dead at a phase: it drives one sandbox through FirecrackerHypervisor (create,
// start or restore, then one more operation) and, when the phase named by --hold begins, says so on stdout and blocks
// for ever, so that a test can SIGKILL it exactly there. A phase is a step's trace span (Kiln's ActivitySource starts
// one per boot and restore step: "kiln.sandbox.start.spawn") or a log event's text ("firecracker started" is logged
// after the spawn and before the driver records the VMM). Phases inside a Firecracker request are held by the
// stand-in's FAKE_FC_HANG instead, which this process passes on to the VMM through its environment.
//
//   Kiln.TestOwner --root R --id ID --firecracker F --kernel K [--rootfs R] [--pool N] [--vsock] [--detached]
//                  [--restore-state S --restore-mem M] [--then pause|snapshot|stop|stop-now|hotplug=FILE] [--hold PHASE]
//                  [--jailer J --chroot-base B --parent-cgroup P]   (a jailed sandbox, as nobody:nogroup)
//                  [--network isolated|nat --net-host NS --net-prefix P --net-state D]   (a networked sandbox)
//   Kiln.TestOwner console-keeper ARGS…   (a console keeper: ConsoleKeeper.RunAsync)
//   Kiln.TestOwner vm-cache ARGS…         (a VM cache's owner: VmCacheOwner.cs)
//
// Prints "LOG <message>" for each of Kiln's log events, "HELD <phase>" when held, "READY <state>" once the operation
// is done (and then blocks too: the test ends it).
using System.Diagnostics;
using Kiln.Host.Network;
using Kiln.Sandbox;
using Kiln.Vmm;
using Microsoft.Extensions.Logging;

// Also the console keeper's program for the library's keeper tests (kiln's own is `kiln console-keeper`).
if (args is ["console-keeper", .. var keeperArguments])
    return await ConsoleKeeper.RunAsync(keeperArguments);
// The VM cache's owner (VmCacheOwner.cs).
if (args is ["vm-cache", .. var cacheArguments])
    return await VmCacheOwner.RunAsync(cacheArguments);

var options = Options.Parse(args);
using var listener = new ActivityListener
{
    ShouldListenTo = source => source.Name == "Kiln",
    Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
    ActivityStarted = activity => Hold.AtSpan(options.Hold, activity),
};
ActivitySource.AddActivityListener(listener);
using var loggerFactory = new HoldingLoggerFactory(options.Hold);

var config = new HypervisorConfig
{
    FirecrackerPath = options.Firecracker,
    KernelPath = options.Kernel,
    ImagePath = options.Rootfs,
    VcpuCount = 1,
    MemoryMiB = 128,
    BlockPoolSize = options.Restore is null ? options.Pool : 0,
    RootDirectory = options.Root,
    StopTimeout = TimeSpan.FromMinutes(10),
    Restore = options.Restore,
    Jail = options.Jailer is { } jailer ? new JailSettings
    {
        JailerPath = jailer,
        Uid = 65534,
        Gid = 65534,
        ChrootBaseDirectory = options.Value("--chroot-base")!,
        ParentCgroup = options.Value("--parent-cgroup"),
    } : null,
    Network = options.Value("--network") is { } mode
        ? new SandboxNetworkSpec { Mode = Enum.Parse<NetworkMode>(mode, ignoreCase: true) }
        : null,
};
var driver = new FirecrackerHypervisor(new FirecrackerHypervisorOptions
{
    LoggerFactory = loggerFactory,
    Ownership = options.Detached ? VmmOwnership.Detached : VmmOwnership.Owned,
    Networks = options.Value("--net-host") is { } netHost
        ? new SandboxNetworksOptions
        {
            HostNamespacePath = netHost,
            NamespacePrefix = options.Value("--net-prefix")!,
            StateDirectory = options.Value("--net-state")!,
        }
        : new SandboxNetworksOptions(),
});
await driver.CreateAsync(options.Id, config);
if (options.Vsock)
    await driver.AddDeviceAsync(new VsockDevice(3, Path.Combine(driver.SandboxDirectory, "vsock.sock")));
await driver.StartAsync();
Console.Out.WriteLine($"STARTED {driver.Pid}");
switch (options.Then)
{
    case null:
        break;
    case "pause":
        await driver.PauseAsync();
        break;
    case "snapshot":
        await driver.PauseAsync();
        await driver.SaveAsync();
        break;
    case "stop":
        await driver.StopAsync(); // the recorded grace: ten minutes
        break;
    case "stop-now":
        await driver.StopAsync(TimeSpan.Zero);
        break;
    case var then when then.StartsWith("hotplug=", StringComparison.Ordinal):
        await driver.HotplugAddAsync(new BlockDevice(then["hotplug=".Length..]));
        break;
    default:
        throw new ArgumentException($"--then {options.Then}: unknown operation");
}
Hold.IfMatches(options.Hold, "operation-done", exact: true);
Console.Out.WriteLine($"READY {driver.State}");
Thread.Sleep(Timeout.Infinite);
return 0;

internal sealed record Options(string Root, string Id, string Firecracker, string Kernel, string? Rootfs, int Pool, bool Vsock,
    bool Detached, SandboxRestore? Restore, string? Then, string? Hold, IReadOnlyDictionary<string, string> Values)
{
    public string? Jailer => Value("--jailer");

    /// <summary>An optional argument's value (the jail's and the network's).</summary>
    public string? Value(string name) => Values.GetValueOrDefault(name);

    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--vsock" or "--detached")
                flags.Add(args[i]);
            else
                values[args[i]] = args[++i];
        }
        string? Get(string name) => values.GetValueOrDefault(name);
        string Require(string name) => Get(name) ?? throw new ArgumentException($"{name} is required");
        return new Options(Require("--root"), Require("--id"), Require("--firecracker"), Require("--kernel"), Get("--rootfs"),
            int.Parse(Get("--pool") ?? "1", System.Globalization.CultureInfo.InvariantCulture), flags.Contains("--vsock"),
            flags.Contains("--detached"),
            Get("--restore-state") is { } state ? SandboxRestore.FromSnapshot(state, Require("--restore-mem")) : null,
            Get("--then"), Get("--hold"), values);
    }
}

internal static class Hold
{
    private static int _commandsMatched;

    /// <summary>
    /// Holds as the span named <paramref name="hold"/> begins, or, for a hold of the form
    /// <c>kiln.host.command TOOL ARGS…[#N]</c>, as the (Nth) host command whose line starts so begins (its tags are
    /// set before it starts: the command has not run yet).
    /// </summary>
    public static void AtSpan(string? hold, Activity activity)
    {
        IfMatches(hold, activity.OperationName, exact: true);
        if (hold is null || activity.OperationName != "kiln.host.command" || activity.GetTagItem("kiln.host.command.line") is not string line)
            return;
        var hash = hold.LastIndexOf('#');
        var (prefix, nth) = hash > 0 ? (hold[..hash], int.Parse(hold[(hash + 1)..], System.Globalization.CultureInfo.InvariantCulture)) : (hold, 1);
        if (("kiln.host.command " + line).StartsWith(prefix, StringComparison.Ordinal) && Interlocked.Increment(ref _commandsMatched) == nth)
            IfMatches(hold, hold, exact: true);
    }

    /// <summary>When <paramref name="seen"/> is the phase to hold, says so and never returns.</summary>
    public static void IfMatches(string? hold, string seen, bool exact)
    {
        if (hold is null || !(exact ? seen == hold : seen.Contains(hold, StringComparison.Ordinal)))
            return;
        Console.Out.WriteLine($"HELD {hold}");
        Console.Out.Flush();
        Thread.Sleep(Timeout.Infinite);
    }
}

/// <summary>Every log event of Kiln to stdout, holding when its text names the phase.</summary>
internal sealed class HoldingLoggerFactory(string? hold) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new HoldingLogger(hold);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    private sealed class HoldingLogger(string? hold) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            Console.Out.WriteLine("LOG " + message.ReplaceLineEndings(" "));
            Hold.IfMatches(hold, message, exact: false);
        }
    }
}
