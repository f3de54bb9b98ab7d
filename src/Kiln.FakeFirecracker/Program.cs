// fake-firecracker: Firecracker v1.16.1's command line, process behaviour and REST API, without a VMM.
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using Kiln.FakeFirecracker;
using Kiln.FakeFirecracker.Http;
using Kiln.FakeFirecracker.Interop;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Resources;
using Kiln.FakeFirecracker.Vmm;

// The same executable is the stand-in's jailer when it runs under the name fake-jailer (a copy of this apphost).
if (Path.GetFileName(Environment.ProcessPath) == "fake-jailer")
{
    return Kiln.FakeFirecracker.Jailer.JailerProgram.Run(args);
}

var knobs = Knobs.FromEnvironment();
var log = new FcLogger("anonymous-instance");

// Firecracker leaves SIGTERM/SIGINT at their default: the process dies by the signal at once. .NET 10 also ends by
// re-raising, but only after running its shutdown (ProcessExit handlers, finalizers); dying straight away keeps the
// timing Firecracker's, and the handler is where FAKE_FC_IGNORE_SIGTERM hooks in.
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
{
    // A jailed Firecracker in a new PID namespace is that namespace's init, and the kernel drops a signal to an init
    // that has no handler of its own: SIGTERM does nothing there (jailer FACTS.md).
    if (knobs.IgnoreSigterm || Environment.ProcessId == 1)
    {
        ctx.Cancel = true;
        return;
    }

    NativeMethods.DieBySignal(NativeMethods.SIGTERM);
});
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => NativeMethods.DieBySignal(2));
// vmm/src/signal_handler.rs: SIGHUP is one of the signals Firecracker handles by logging and ending at once with its own
// exit code (FcExitCode::SIGHUP, 156), without the "Firecracker exiting" line (08-flags-and-exit-codes).
using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
{
    ctx.Cancel = true;
    log.Error("main", "Shutting down VM after intercepting signal 1, code 0.", new LogOrigin("src/vmm/src/signal_handler.rs", 75));
    Console.Out.Flush();
    Environment.Exit(156);
});

CommandLine cl;
try
{
    cl = CommandLine.Parse(args);
}
catch (ArgParseException e)
{
    log.Error("main", $"Arguments parsing error: {e.Message} \\n\\nFor more information try --help.", LogOrigin.Main);
    Console.Error.WriteLine($"Error: ParseArguments({e.DebugForm})");
    return ExitWith(153);
}

if (cl.Flag("help"))
{
    log.Stdout(HelpText.Text + "\n");
    return ExitWith(0);
}

if (cl.Flag("version"))
{
    log.Stdout($"Firecracker v{VmmCore.Version}\n\n");
    return ExitWith(0);
}

if (cl.Flag("snapshot-version"))
{
    log.Stdout(VmmCore.SnapshotDataVersion + "\n");
    return ExitWith(0);
}

if (cl.Value("describe-snapshot") is { } describePath)
{
    try
    {
        log.Stdout(VmmCore.DescribeSnapshot(describePath) + "\n");
        return ExitWith(0);
    }
    catch (InvalidDataException)
    {
        // main.rs: SnapshotVersionError::SnapshotVersion around the snapshot crate's bitcode decoding error, which is
        // what any file that is not a snapshot state file gives (08-flags-and-exit-codes).
        log.Error("main", "When printing Snapshot Data format: Invalid data format version of snapshot file: An error occurred during bitcode serialization: bitcode error", LogOrigin.Main);
        Console.Error.WriteLine("Error: PrintSnapshotDataFormat(SnapshotVersion(Bitcode(Error(\"bitcode error\"))))");
        return ExitWith(1);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        // main.rs: MainError::PrintSnapshotDataFormat(SnapshotVersionError::OpenSnapshot(io::Error)), GenericError.
        log.Error("main", $"When printing Snapshot Data format: Unable to open snapshot state file: {VmmCore.IoText(e)}", LogOrigin.Main);
        if (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"Error: PrintSnapshotDataFormat(OpenSnapshot({RustDebug.IoError(e is UnauthorizedAccessException ? 13 : 2)}))");
        }

        return ExitWith(1);
    }
}

var id = cl.Id;
if (InstanceIdProblem(id) is { } idProblem)
{
    Panic("src/firecracker/src/main.rs:309:48", $"Invalid instance ID: {idProblem}");
}

log.InstanceId = id;
// main.rs: the level is parsed before the logger is touched; a bad one is MainError::InvalidLogLevel, which maps to
// FcExitCode::BadConfiguration (152). A log file that cannot be opened is MainError::LoggerInitialization (exit 1).
// Both are reported by main()'s error path: the Display form to the log, the Debug form to stderr.
LogLevel? level = null;
if (cl.Value("level") is { } levelText)
{
    if (!FcLogger.TryParseLevel(levelText, out var parsed))
    {
        log.Error("main", $"Invalid value for logger level: Failed to parse string to level filter: {levelText}.Possible values: [Error, Warning, Info, Debug]", LogOrigin.Main);
        Console.Error.WriteLine($"Error: InvalidLogLevel(LevelFilterFromStrError({RustDebug.Str(levelText)}))");
        return ExitWith(152);
    }

    level = parsed;
}

if (log.Configure(cl.Value("log-path"), level, cl.Flag("show-level") ? true : null, cl.Flag("show-log-origin") ? true : null, cl.Value("module")) is var logErrno and not 0)
{
    log.Error("main", $"Could not initialize logger: Failed to open target file: {NativeMethods.OsError(logErrno)}", LogOrigin.Main);
    Console.Error.WriteLine($"Error: LoggerInitialization(LoggerUpdateError({RustDebug.IoError(logErrno)}))");
    return ExitWith(1);
}

log.Info("main", $"Running Firecracker v{VmmCore.Version}", LogOrigin.Main);
if (knobs.ExitAt == "before-socket")
{
    return ExitWith(knobs.ExitCode);
}

// main.rs: the seccomp filter file is read first; one that cannot be opened is MainError::SeccompFilter, exit 1.
// Its content is not checked (the stand-in installs no filter).
if (cl.Value("seccomp-filter") is { } filterPath && NativeMethods.Open(filterPath, NativeMethods.O_RDONLY) is var filterFd)
{
    if (filterFd < 0)
    {
        log.Error("main", $"Seccomp error: Filter file open error: {NativeMethods.OsError(-filterFd)}", LogOrigin.Main);
        Console.Error.WriteLine($"Error: SeccompFilter(FileOpen({RustDebug.IoError(-filterFd)}))");
        return ExitWith(1);
    }

    NativeMethods.Close(filterFd);
}

byte[]? configJson = null;
if (cl.Value("config-file") is { } configPath)
{
    configJson = ReadOrPanic(configPath, "src/firecracker/src/main.rs:388:20", "Unable to open or read from the configuration file");
}

// main.rs parses these after reading the config file, each panicking on its own line (08-flags-and-exit-codes).
var maxPayload = ParseSize("http-api-max-payload-size", 51200UL, "src/firecracker/src/main.rs:403:18");
var options = new VmmOptions(id, cl.Flag("enable-pci"), (ulong)ParseSize("mmds-size-limit", (ulong)maxPayload, "src/firecracker/src/main.rs:415:18"), cl.Flag("boot-timer"));
if (!cl.Flag("no-api"))
{
    // Only with the API: main.rs hands them to its process-time reporter.
    ParseU64("start-time-us", "src/firecracker/src/main.rs:427:18");
    ParseU64("start-time-cpu-us", "src/firecracker/src/main.rs:432:18");
    ParseU64("parent-cpu-time-us", "src/firecracker/src/main.rs:437:18");
}

var exits = new BlockingCollection<int>();
var mainNamed = false;
var metrics = new Metrics();
var vmm = new VmmCore(log, metrics, knobs, options, code => exits.Add(code));

if (cl.Value("metrics-path") is { } metricsPath && metrics.Configure(metricsPath) is { } metricsError)
{
    // main.rs: MainError::MetricsInitialization(MetricsConfigError::InitializationFailure(io error text)), exit 1.
    log.Error("main", $"Could not initialize metrics: Cannot initialize the metrics system due to bad user input: {metricsError}", LogOrigin.Main);
    Console.Error.WriteLine($"Error: MetricsInitialization(InitializationFailure({RustDebug.Str(metricsError)}))");
    return ExitWith(1);
}

if (cl.Value("metadata") is { } metadataPath)
{
    var metadata = ReadOrPanic(metadataPath, "src/firecracker/src/main.rs:400:20", "Unable to open or read from the mmds content file");
    try
    {
        vmm.Resources.MmdsData = SerdeParser.Parse(metadata, AnySpec.Instance);
        vmm.Resources.MmdsInitialized = true;
    }
    catch (SerdeException e)
    {
        Panic("src/firecracker/src/main.rs:402:44", $"MMDS error: metadata provided not valid json: {e.Message}");
    }
}

if (!cl.Flag("no-api"))
{
    if (knobs.ApiDelayMs > 0)
    {
        Thread.Sleep(knobs.ApiDelayMs);
    }

    if (!knobs.NoApiSocket)
    {
        ApiServer server;
        try
        {
            server = ApiServer.Bind(cl.ApiSock, vmm, maxPayload);
        }
        catch (IOException)
        {
            log.Error("main", $"RunWithApiError error: Failed to open the API socket at: {cl.ApiSock}. Check that it is not already used.", LogOrigin.Main);
            Console.Error.WriteLine($"Error: RunWithApi(FailedToBindSocket({RustDebug.Str(cl.ApiSock)}))");
            return ExitWith(1);
        }

        log.Info("main", $"Listening on API socket ({RustDebug.Str(cl.ApiSock)}).", LogOrigin.Main);
        server.Start();
        NameMainThread();
        if (configJson is not null && !BootFromConfig(configJson, "RunWithApiError error"))
        {
            return ExitWith(1);
        }

        server.Serve();
    }
}

NameMainThread();
if (cl.Flag("no-api") && configJson is not null && !BootFromConfig(configJson, "RunWithoutApiError error"))
{
    return ExitWith(1);
}

return ExitWith(exits.Take());

// A thread starts with its creator's comm name and keeps it until it names itself. The runtime's own threads (thread
// pool, sockets engine) are therefore created before main becomes "firecracker", so that a thread list never shows
// two "firecracker"s. The main thread's comm would otherwise be the executable's, cut to 15 bytes: "fake-firecracke".
void NameMainThread()
{
    if (mainNamed)
    {
        return;
    }

    mainNamed = true;
    var workers = Math.Max(2, Environment.ProcessorCount);
    // Not disposed: a worker may still be inside Signal/Wait when the main thread moves on.
#pragma warning disable CA2000
    var all = new CountdownEvent(workers);
#pragma warning restore CA2000
    for (var i = 0; i < workers; i++)
    {
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            all.Signal();
            all.Wait();
        }, null);
    }

    all.Wait();
    // The timer thread too (the periodic metrics flush and the guest's delays use it).
    Task.Delay(1).Wait();
    NativeMethods.SetCurrentThreadName("firecracker");
}

// main.rs: a config file that fails is BuildFromJsonError (ParseFromJson or StartMicroVM) inside
// ApiServerError/RunWithoutApiError::BuildFromJson, reported by main()'s error path and ending with GenericError (1),
// as FACTS.md saw for a config file's vsock path that already exists. The stderr Debug line is not reproduced.
bool BootFromConfig(byte[] json, string mainError)
{
    var stage = "Configuration for VMM from one single json failed";
    try
    {
        var config = SerdeParser.Parse(json, Schemas.VmmConfig)!.AsObject();
        ConfigLoader.Apply(vmm, config, checkFiles: true);
        stage = "Could not Start MicroVM from one single json";
        vmm.StartMicroVm();
        log.Info("main", "Successfully started microvm that was configured from one single json", LogOrigin.Main);
        return true;
    }
    catch (Exception e) when (e is SerdeException or VmmActionException)
    {
        log.Error("main", $"{mainError}: Failed to build MicroVM from Json: {stage}: {e.Message}", LogOrigin.Main);
        return false;
    }
}

int ExitWith(int code)
{
    log.Write(code == 0 ? LogLevel.Info : LogLevel.Error, "main",
        code == 0 ? "Firecracker exiting successfully. exit_code=0" : $"Firecracker exiting with error. exit_code={code}", LogOrigin.Main);
    Console.Out.Flush();
    Console.Error.Flush();
    Environment.Exit(code);
    return code;
}

void Panic(string location, string message)
{
    log.Error("main", $"Firecracker panicked at {location}:\n{message}", LogOrigin.Main);
    NativeMethods.DieBySignal(NativeMethods.SIGABRT);
}

byte[] ReadOrPanic(string path, string location, string what)
{
    var fd = NativeMethods.Open(path, NativeMethods.O_RDONLY);
    if (fd < 0)
    {
        Panic(location, $"{what}: {RustDebug.IoError(-fd)}");
    }

    NativeMethods.Close(fd);
    try
    {
        return File.ReadAllBytes(path);
    }
    catch (IOException e)
    {
        Panic(location, $"{what}: {e.Message}");
        throw;
    }
}

int ParseSize(string name, ulong fallback, string location)
{
    if (cl.Value(name) is not { } text)
    {
        return (int)Math.Min(fallback, int.MaxValue);
    }

    return (int)Math.Min(ParseOrPanic(name, text, "usize", location), int.MaxValue);
}

void ParseU64(string name, string location)
{
    if (cl.Value(name) is { } text)
    {
        _ = ParseOrPanic(name, text, "u64", location);
    }
}

// Rust's str::parse::<u64/usize>, whose ParseIntError kinds the panic message shows.
ulong ParseOrPanic(string name, string text, string type, string location)
{
    if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v))
    {
        return v;
    }

    var kind = text.Length == 0 ? "Empty" : text.All(char.IsAsciiDigit) ? "PosOverflow" : "InvalidDigit";
    Panic(location, $"'{name}' parameter expected to be of '{type}' type.: ParseIntError {{ kind: {kind} }}");
    return 0;
}

static string? InstanceIdProblem(string id)
{
    if (id.Length is < 1 or > 64)
    {
        return $"InvalidLen({id.Length}, 1, 64)";
    }

    for (var i = 0; i < id.Length; i++)
    {
        if (!(char.IsAsciiLetterOrDigit(id[i]) || id[i] == '-'))
        {
            return $"InvalidChar('{id[i]}', {i})";
        }
    }

    return null;
}
