// kiln-agent's entry point. Three roles, one binary:
//  - PID 1 (the guest's init): mount /proc, /sys, /dev; start the server as a child; reap orphans; power off when the
//    server ends (it ends on a PowerOff request).
//  - the server: listen on vsock and/or a Unix socket and serve the agent protocol.
//  - the `--exec-as` shim: drop to a user and exec a command (posix_spawn cannot switch users).
using System.ComponentModel;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kiln.GuestAgent;
using Kiln.GuestAgent.Interop;
using Microsoft.Win32.SafeHandles;

// Logging goes straight to fd 2: System.Console would install the runtime's terminal signal handling, SIGCHLD included.
using var log = new StreamWriter(new FileStream(new SafeFileHandle(2, ownsHandle: false), FileAccess.Write, 1), leaveOpen: false) { AutoFlush = true };

if (args is ["--exec-as", ..])
    return ExecAs(args, log);

if (Native.GetPid() == 1 && !args.Contains("--init"))
    return RunInit(args, log);

AgentOptions options;
try
{
    options = AgentOptions.Parse(args);
}
catch (ArgumentException e)
{
    log.WriteLine($"kiln-agent: {e.Message}");
    return 2;
}

foreach (var stray in options.Ignored)
    log.WriteLine($"kiln-agent: ignoring unknown argument '{stray}' (as init, arguments the kernel did not know are passed over)");

return await RunServerAsync(options, log);

static int RunInit(string[] args, TextWriter log)
{
    InitDuties.MountKernelFileSystems(log);
    var self = Environment.ProcessPath ?? "/proc/self/exe";
    var env = Environment.GetEnvironmentVariables().Keys.Cast<string>().Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}").ToList();
    int server;
    try
    {
        server = Spawner.SpawnInheriting(self, [self, "--init", .. args], env);
    }
    catch (Win32Exception e)
    {
        log.WriteLine($"kiln-agent: cannot start the server: {e.Message}");
        InitDuties.PowerOff(TimeSpan.FromSeconds(1), log);
        return 1;
    }

    var (code, signal) = InitDuties.ReapUntilExit(server);
    log.WriteLine(signal is null ? $"kiln-agent: server exited with {code}" : $"kiln-agent: server killed by signal {signal}");
    InitDuties.PowerOff(TimeSpan.FromSeconds(5), log);
    return 0;
}

static async Task<int> RunServerAsync(AgentOptions options, TextWriter log)
{
    using var server = new AgentServer(options);
    using var stop = CancellationTokenSource.CreateLinkedTokenSource(server.PowerOffRequested);
    if (options.ExitWithParent)
        ParentWatch.Start(() => stop.Cancel());
    using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
    {
        context.Cancel = true;
        stop.Cancel();
    });

    var listeners = new List<Socket>();
    try
    {
        if (options.UnixSocket is { } path)
            listeners.Add(Listeners.Unix(path));
        if (options.VsockPort is { } port)
            listeners.Add(Listeners.Vsock(port));
    }
    catch (SocketException e)
    {
        log.WriteLine($"kiln-agent: cannot listen: {e.Message}");
        listeners.ForEach(l => l.Dispose());
        return 1;
    }

    log.WriteLine($"kiln-agent {AgentServer.AgentVersion} listening ({string.Join(", ", Describe(options))})");
    try
    {
        await Task.WhenAll(listeners.Select(l => server.ServeAsync(l, stop.Token)));
    }
    finally
    {
        listeners.ForEach(l => l.Dispose());
        if (options.UnixSocket is { } socketPath)
            File.Delete(socketPath);
    }

    return 0;
}

static IEnumerable<string> Describe(AgentOptions options)
{
    if (options.UnixSocket is { } path)
        yield return "unix:" + path;
    if (options.VsockPort is { } port)
        yield return "vsock port " + port.ToString(CultureInfo.InvariantCulture);
}

static unsafe int ExecAs(string[] args, TextWriter log)
{
    if (args.Length < 5 || !uint.TryParse(args[1], CultureInfo.InvariantCulture, out var uid) || !uint.TryParse(args[2], CultureInfo.InvariantCulture, out var gid))
    {
        log.WriteLine("kiln-agent: usage: --exec-as UID GID PATH ARGV...");
        return 2;
    }

    if (Native.SetGroups(1, &gid) != 0 || Native.SetGid(gid) != 0 || Native.SetUid(uid) != 0)
    {
        log.WriteLine($"kiln-agent: cannot switch to {uid}:{gid}: {Native.ErrorText(Native.LastErrno)}");
        return 126;
    }

    using var strings = new NativeStrings();
    Native.Execv(strings.String(args[3]), strings.Array(args[4..]));
    var errno = Native.LastErrno;
    log.WriteLine($"kiln-agent: {args[3]}: {Native.ErrorText(errno)}");
    return errno == Native.ENOENT ? 127 : 126;
}
