// The pretend guest: one idle OS thread per vCPU, a serial console that prints what a Linux guest would about its
// devices, a vsock echo service and a control service that dials the host, and an init that reboots on Ctrl-Alt-Del. No guest code runs.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kiln.FakeFirecracker.Interop;

namespace Kiln.FakeFirecracker.Vmm;

internal sealed class Guest
{
    private readonly FcLogger _log;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private readonly int _serialFd = -1;
    private readonly bool _console;
    private TaskCompletionSource _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _rebootRequested;
    private int _serialInputStarted;

    public Guest(FcLogger log, VmResources resources, string cmdline, int vcpus, IReadOnlyList<int> vsockPorts, int vsockControlPort)
    {
        VsockControlPort = vsockControlPort;
        _log = log;
        Cmdline = cmdline;
        VsockPorts = vsockPorts;
        _console = cmdline.Split(' ').Any(a => a.StartsWith("console=ttyS", StringComparison.Ordinal));
        RebootsOnCtrlAltDel = cmdline.Split(' ').Contains("reboot=k");
        if (resources.Serial?.SerialOutPath is { } serialPath)
        {
            _serialFd = NativeMethods.Open(serialPath, NativeMethods.O_RDWR | NativeMethods.O_CREAT | NativeMethods.O_APPEND | NativeMethods.O_NONBLOCK);
        }

        // A new thread starts with its creator's comm name; each vCPU thread renames itself (what
        // /proc/PID/task/*/comm shows) before InstanceStart returns, so no list ever shows the creator's name twice.
        // Not disposed: a vCPU thread may still be inside Signal when Wait returns.
#pragma warning disable CA2000
        var named = new CountdownEvent(vcpus);
#pragma warning restore CA2000
        for (var i = 0; i < vcpus; i++)
        {
            var name = $"fc_vcpu {i}";
            var t = new Thread(() =>
            {
                NativeMethods.SetCurrentThreadName(name);
                named.Signal();
                Thread.Sleep(Timeout.Infinite);
            })
            { IsBackground = true, Name = name };
            t.Start();
        }

        named.Wait();
    }

    public string Cmdline { get; }

    public IReadOnlyList<int> VsockPorts { get; }

    /// <summary>The port of the stand-in's own control service (0: none): <c>DIAL &lt;port&gt;</c> makes the guest connect to the host.</summary>
    public int VsockControlPort { get; }

    public bool RebootsOnCtrlAltDel { get; }

    public bool IsRunning { get; private set; }

    /// <summary>Raised on a thread-pool thread when the guest has rebooted (Firecracker then exits 0).</summary>
    public event Action? Rebooted;

    public void SetRunning(bool running)
    {
        lock (_gate)
        {
            if (running == IsRunning)
            {
                return;
            }

            IsRunning = running;
            if (running)
            {
                _running.TrySetResult();
                _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            else
            {
                _paused.TrySetResult();
                _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public Task WhenRunning()
    {
        lock (_gate)
        {
            return _running.Task;
        }
    }

    private Task WhenPaused()
    {
        lock (_gate)
        {
            return _paused.Task;
        }
    }

    public void Boot(VmResources resources)
    {
        Console($"Linux version 6.1.0-kiln-fake (kiln@fake-firecracker) (gcc 12.2.0) #1 SMP PREEMPT_DYNAMIC");
        Console($"Command line: {Cmdline}");
        Console($"Kernel command line: {Cmdline}");
        Console($"Memory: {resources.Machine.MemSizeMib * 1024}K available");
        for (var i = 0; i < resources.Drives.Count; i++)
        {
            var d = resources.Drives[i];
            var sectors = (d.PathOnHost is null ? 0 : FileLength(d.PathOnHost)) / 512;
            Console($"virtio_blk virtio{i}: 1/0/0 default/read/poll queues");
            Console($"virtio_blk virtio{i}: [{DiskName(i)}] {sectors} 512-byte logical blocks ({SizeText(sectors * 512)})");
        }

        if (resources.Vsock is not null)
        {
            Console("NET: Registered PF_VSOCK protocol family");
        }

        Console("Run /sbin/init as init process");
        var blocks = string.Join(' ', Enumerable.Range(0, resources.Drives.Count).Select(DiskName));
        var nets = string.Join(' ', Enumerable.Range(0, resources.Nets.Count).Select(i => $"eth{i}"));
        ConsoleRaw($"kiln-fake-guest: devices block=[{blocks}] net=[{nets}] vsock={(resources.Vsock is null ? "no" : "yes")}");
        StartSerialInput();
    }

    public void Restored()
    {
        Console("kiln-fake-guest: resumed from snapshot");
        StartSerialInput();
    }

    /// <summary>
    /// Firecracker's stdin is the guest's serial input. The pretend guest behaves like a terminal in cooked mode:
    /// it echoes what arrives, and answers each line (ended by Enter's CR, or LF) with
    /// <c>kiln-fake-guest: serial input: LINE</c>.
    /// </summary>
    private void StartSerialInput()
    {
        if (!_console || Interlocked.Exchange(ref _serialInputStarted, 1) != 0)
        {
            return;
        }

        var reader = new Thread(() =>
        {
            using var stdin = System.Console.OpenStandardInput();
            var buffer = new byte[1024];
            var line = new List<byte>();
            int n;
            while ((n = stdin.Read(buffer, 0, buffer.Length)) > 0)
            {
                foreach (var b in buffer.AsSpan(0, n))
                {
                    if (b is (byte)'\r' or (byte)'\n')
                    {
                        SerialWrite("\r\n");
                        if (line.Count > 0)
                        {
                            ConsoleRaw("kiln-fake-guest: serial input: " + Encoding.UTF8.GetString(line.ToArray()));
                            line.Clear();
                        }
                    }
                    else
                    {
                        line.Add(b);
                        SerialWrite(Encoding.UTF8.GetString([b]));
                    }
                }
            }
        })
        { IsBackground = true, Name = "serial-input" };
        reader.Start();
    }

    /// <summary>What the guest kernel prints when a block device's backing file changed size.</summary>
    public void DriveResized(int index, long oldBytes, long newBytes)
    {
        var disk = DiskName(index);
        Console($"virtio_blk virtio{index}: [{disk}] new size: {newBytes / 512} 512-byte logical blocks ({SizeText(newBytes)})");
        if (oldBytes / 512 != newBytes / 512)
        {
            Console($"{disk}: detected capacity change from {oldBytes / 512} to {newBytes / 512}");
        }
    }

    /// <summary>The guest's init handles Ctrl-Alt-Del after it has run for a while (paused time does not count).</summary>
    public void CtrlAltDel(int delayMs)
    {
        lock (_gate)
        {
            if (_rebootRequested)
            {
                return;
            }

            _rebootRequested = true;
        }

        _ = Task.Run(async () =>
        {
            var remaining = delayMs;
            while (remaining > 0)
            {
                await WhenRunning().ConfigureAwait(false);
                var sw = Stopwatch.StartNew();
                await Task.WhenAny(Task.Delay(remaining), WhenPaused()).ConfigureAwait(false);
                remaining -= (int)sw.ElapsedMilliseconds;
            }

            Console("reboot: Restarting system");
            if (RebootsOnCtrlAltDel)
            {
                Console("reboot: machine restart");
                Rebooted?.Invoke();
            }
        });
    }

    public static string DiskName(int index) => "vd" + (char)('a' + index);

    public static long FileLength(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Linux's string_get_size: "16.8 MB/16.0 MiB", "0 B/0 B".</summary>
    public static string SizeText(long bytes) => $"{Units(bytes, 1000, ["B", "kB", "MB", "GB", "TB"])}/{Units(bytes, 1024, ["B", "KiB", "MiB", "GiB", "TiB"])}";

    private static string Units(long bytes, int unit, string[] names)
    {
        double v = bytes;
        var i = 0;
        while (v >= unit && i < names.Length - 1)
        {
            v /= unit;
            i++;
        }

        if (i == 0)
        {
            return $"{bytes} {names[0]}";
        }

        var text = v >= 100 ? v.ToString("0", CultureInfo.InvariantCulture)
            : v >= 10 ? v.ToString("0.0", CultureInfo.InvariantCulture)
            : v.ToString("0.00", CultureInfo.InvariantCulture);
        return $"{text} {names[i]}";
    }

    private void Console(string line)
    {
        var t = _uptime.Elapsed.TotalSeconds;
        ConsoleRaw(string.Create(CultureInfo.InvariantCulture, $"[{t,12:0.000000}] {line}"));
    }

    // A serial console ends lines with CR LF.
    private void ConsoleRaw(string line) => SerialWrite(line + "\r\n");

    private void SerialWrite(string text)
    {
        if (!_console)
        {
            return;
        }

        if (_serialFd >= 0)
        {
            _ = NativeMethods.WriteAll(_serialFd, Encoding.UTF8.GetBytes(text));
        }
        else
        {
            _log.Stdout(text);
        }
    }
}
