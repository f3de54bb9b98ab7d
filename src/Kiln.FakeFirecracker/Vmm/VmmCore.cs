// The VMM's state machine: what Firecracker's PrebootApiController and RuntimeApiController decide between them.
// Requests reach it one at a time (the API thread, or main while booting from --config-file); Gate serialises both.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Interop;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Resources;

namespace Kiln.FakeFirecracker.Vmm;

internal enum VmState
{
    NotStarted,
    Running,
    Paused,
}

internal sealed record VmmOptions(string InstanceId, bool EnablePci, ulong MmdsSizeLimit, bool BootTimer);

#pragma warning disable CA1001 // one per process, lives as long as it
internal sealed class VmmCore
#pragma warning restore CA1001
{
    public const string Version = "1.16.1";
    public const string SnapshotDataVersion = "v10.0.0";
    private const string SnapshotMagic = "KILN-FAKE-FC-SNAPSHOT ";
    private readonly Action<int> _exit;
    private Timer? _metricsTimer;

    public VmmCore(FcLogger log, Metrics metrics, Knobs knobs, VmmOptions options, Action<int> exit)
    {
        Log = log;
        Metrics = metrics;
        Knobs = knobs;
        Options = options;
        _exit = exit;
    }

    public Lock Gate { get; } = new();
    public FcLogger Log { get; }
    public Metrics Metrics { get; }
    public Knobs Knobs { get; }
    public VmmOptions Options { get; }
    public VmResources Resources { get; } = new();

    /// <summary>The TAP devices the network interfaces hold open, as Firecracker holds them.</summary>
    public TapDevices Taps { get; } = new();
    public VmState State { get; private set; }

    // The restored guest memory (a private mapping of the snapshot's memory file), kept until the process ends.
    private System.IO.MemoryMappedFiles.MemoryMappedFile? _guestMemory;
    private System.IO.MemoryMappedFiles.MemoryMappedViewAccessor? _guestMemoryView;

    /// <summary>Whether guest memory is mapped from a snapshot's memory file.</summary>
    public bool GuestMemoryMapped => _guestMemory is not null && _guestMemoryView is not null;
    public Guest? Guest
    {
        get;
        private set
        {
            field = value;
            if (value is not null)
            {
                _guestExists.TrySetResult(value);
            }
        }
    }

    // Completes when InstanceStart or a snapshot load brings the guest up: the vsock device waits on it.
    private readonly TaskCompletionSource<Guest> _guestExists = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public HybridVsock? VsockDevice { get; private set; }

    /// <summary>Each drive's size as the guest last saw it, for the capacity-change lines a PATCH prints.</summary>
    public Dictionary<string, long> DriveBytes { get; } = [];

    /// <summary>The free page hinting command Firecracker last sent the guest (HintingState::host_cmd).</summary>
    public uint BalloonHostCmd { get; set; }

    /// <summary>The id of the last hinting run started (HintingState::last_cmd_id).</summary>
    public uint BalloonLastCmdId { get; set; }

    // When the pretend guest's balloon driver activates the device: InstanceStart plus FAKE_FC_BALLOON_ACTIVATION_MS;
    // a restored balloon comes back as active as it was saved (the stand-in saves only active guests).
    private long _balloonActiveAt = long.MaxValue;

    /// <summary>Whether the guest's virtio-balloon driver has activated the device (Balloon::is_activated).</summary>
    public bool BalloonActivated => Stopwatch.GetTimestamp() >= Interlocked.Read(ref _balloonActiveAt);

    public ulong HotplugRequestedMib { get; set; }

    /// <summary>Set once a boot-specific resource is configured: from then on /snapshot/load is refused.</summary>
    public bool BootPath { get; set; }

    public bool Started => State != VmState.NotStarted;

    public string StateName => State switch
    {
        VmState.NotStarted => "Not started",
        VmState.Running => "Running",
        _ => "Paused",
    };

    public void RequirePreBoot()
    {
        if (Started)
        {
            throw new VmmActionException(Faults.NotSupportedPostBoot);
        }
    }

    public void RequirePostBoot()
    {
        if (!Started)
        {
            throw new VmmActionException(Faults.NotSupportedPreBoot);
        }
    }

    /// <summary>PUT /vsock: the new socket is bound before the old device goes (its file is removed then).</summary>
    public void SetVsock(VsockConfig config)
    {
        var old = VsockDevice;
        if (old is not null && old.UdsPath == config.UdsPath)
        {
            old.Close(unlink: true);
            old = null;
            VsockDevice = null;
        }

        HybridVsock device;
        try
        {
            device = HybridVsock.Bind(config.UdsPath, _guestExists.Task);
        }
        catch (IOException e)
        {
            throw new VmmActionException($"Vsock config error: Cannot create backend for vsock device: Error binding to the host-side Unix socket: {e.Message}");
        }

        old?.Close(unlink: true);
        VsockDevice = device;
        Resources.Vsock = config;
    }

    /// <summary>The kernel command line the guest sees: the boot args plus what Firecracker appends.</summary>
    public string KernelCmdline()
    {
        var sb = new StringBuilder(Resources.BootSource?.BootArgs
            ?? "reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce");
        if (!Options.EnablePci)
        {
            sb.Append(" pci=off");
        }

        if (Resources.Drives.FirstOrDefault(d => d.IsRootDevice) is { } root)
        {
            sb.Append(root.Partuuid is null ? " root=/dev/vda" : $" root=PARTUUID={root.Partuuid}");
            sb.Append(root.IsReadOnly ? " ro" : " rw");
        }

        if (!Options.EnablePci)
        {
            var devices = Resources.Drives.Count + Resources.Nets.Count + (Resources.Vsock is null ? 0 : 1)
                + (Resources.Balloon is null ? 0 : 1) + (Resources.Entropy is null ? 0 : 1);
            for (var i = 0; i < devices; i++)
            {
                sb.Append(System.Globalization.CultureInfo.InvariantCulture, $" virtio_mmio.device=4K@0x{0xc0001000 + (i * 0x1000):x}:{5 + i}");
            }
        }

        return sb.ToString();
    }

    /// <summary>InstanceStart.</summary>
    public void StartMicroVm()
    {
        RequirePreBoot();
        if (Resources.BootSource is null)
        {
            throw new VmmActionException("Start microvm error: Cannot start microvm without kernel configuration.");
        }

        if (Knobs.ExitAt == "instance-start")
        {
            Exit(Knobs.ExitCode);
        }

        var bootClock = Stopwatch.StartNew();
        Interlocked.Exchange(ref _balloonActiveAt, Stopwatch.GetTimestamp() + (Knobs.BalloonActivationMs * Stopwatch.Frequency / 1000));
        var guest = NewGuest();
        guest.Boot(Resources);
        Log.Info("main", "Artificially kick devices", LogOrigin.Devices);
        Guest = guest;
        State = VmState.Running;
        guest.SetRunning(true);
        Log.Warn("fc_vcpu 0", "Received a VcpuEvent::Resume message with immediate_exit enabled. immediate_exit was disabled before proceeding", LogOrigin.Vcpu);
        Metrics.Flush();
        // Firecracker also writes a metrics line every 60 s once the VM runs.
        _metricsTimer = new Timer(_ => Metrics.Flush(), null, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60));
        if (Options.BootTimer)
        {
            // What the guest's write to the boot-timer device makes Firecracker log; the pretend guest boots at once.
            var us = VmmCore.Micros(bootClock);
            Log.Info("fc_vcpu 0", $"Guest-boot-time = {us,6} us {us / 1000} ms, {us,6} CPU us {us / 1000} CPU ms", new LogOrigin("src/vmm/src/devices/pseudo/boot_timer.rs", 52));
        }
    }

    private Guest NewGuest()
    {
        foreach (var d in Resources.Drives)
        {
            DriveBytes[d.DriveId] = d.PathOnHost is null ? 0 : Guest.FileLength(d.PathOnHost);
        }

        var guest = new Guest(Log, Resources, KernelCmdline(), Resources.Machine.VcpuCount, Knobs.VsockPorts, Knobs.VsockControlPort);
        guest.Rebooted += () =>
        {
            lock (Gate)
            {
                Exit(0);
            }
        };
        return guest;
    }

    public void Pause()
    {
        RequirePostBoot();
        var sw = Stopwatch.StartNew();
        State = VmState.Paused;
        Guest!.SetRunning(false);
        Log.Info("main", $"'pause vm' VMM action took {Micros(sw)} us.", LogOrigin.Rpc);
    }

    public void Resume()
    {
        RequirePostBoot();
        var sw = Stopwatch.StartNew();
        State = VmState.Running;
        Guest!.SetRunning(true);
        Log.Info("main", $"'resume vm' VMM action took {Micros(sw)} us.", LogOrigin.Rpc);
    }

    public static long Micros(Stopwatch sw) => sw.ElapsedTicks * 1_000_000 / Stopwatch.Frequency;

    public void SendCtrlAltDel()
    {
        RequirePostBoot();
        Guest!.CtrlAltDel(Knobs.RebootDelayMs);
    }

    /// <summary>Ends the process as Firecracker's main does after the VMM stopped: the last log lines, then exit.
    /// Never returns: the calling thread must not go on answering or booting while main ends the process.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public void Exit(int code)
    {
        if (code == 0)
        {
            Log.Info("main", "Vmm is stopping.", LogOrigin.Vmm);
            if (Guest is not null)
            {
                Log.Info("main", "Killing vCPU threads", LogOrigin.Vmm);
            }
        }

        _exit(code);
        while (true)
        {
            Thread.Sleep(Timeout.Infinite);
        }
    }

    public void CreateSnapshot(string type, string snapshotPath, string memFilePath)
    {
        RequirePostBoot();
        if (State == VmState.Running)
        {
            throw new VmmActionException("Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running");
        }

        // v1.16's rpc_interface.rs create_snapshot no longer refuses a Diff snapshot without dirty page tracking (the
        // older "Diff snapshots are not allowed…" check in RuntimeApiController::create_snapshot is gone).
        if (type == "Diff")
        {
            // rpc_interface.rs create_snapshot.
            Log.Warn("main", "[DevPreview] Virtual machine diff snapshots is in development preview.", LogOrigin.DevPreview);
        }

        var sw = Stopwatch.StartNew();
        var state = new JsonObject
        {
            ["vm"] = JsonNode.Parse(Resources.ToJson()),
            ["mmds"] = Resources.MmdsData?.DeepClone(),
            ["state_at_snapshot"] = "Paused",
            ["cpu_vendor"] = CpuVendor.Host,
        };
        try
        {
            File.WriteAllText(snapshotPath, SnapshotMagic + SnapshotDataVersion + "\n" + JsonText.Of(state));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VmmActionException($"Create snapshot error: Cannot perform open on the snapshot backing file: {IoText(e)}");
        }

        try
        {
            // Sparse, exactly as large as guest memory.
            using var mem = new FileStream(memFilePath, FileMode.Create, FileAccess.Write);
            mem.SetLength((long)Resources.Machine.MemSizeMib * 1024 * 1024);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // ASSUMED wording.
            throw new VmmActionException($"Create snapshot error: Cannot save the guest memory: {IoText(e)}");
        }

        Log.Info("main", $"'create {type.ToLowerInvariant()} snapshot' VMM action took {Micros(sw)} us.", LogOrigin.Rpc);
    }

    /// <summary>Reads the data format version of a state file (for --describe-snapshot).</summary>
    public static string DescribeSnapshot(string path)
    {
        using var reader = new StreamReader(path);
        var first = reader.ReadLine() ?? "";
        if (!first.StartsWith(SnapshotMagic, StringComparison.Ordinal))
        {
            throw new InvalidDataException("Snapshot file is not a snapshot state file.");
        }

        return first[SnapshotMagic.Length..];
    }

    public sealed record LoadParams(string SnapshotPath, string MemPath, string MemBackendType, bool ResumeVm, bool TrackDirtyPages,
        IReadOnlyList<(string IfaceId, string HostDevName)> NetworkOverrides, string? VsockOverride);

    /// <summary>PUT /snapshot/load, in the order of persist.rs restore_from_snapshot: the state file (and the overrides
    /// applied to it), the CPU vendor check, guest memory, then the devices. A failure other than "not allowed" is fatal:
    /// the caller answers, then exits 1 (09-snapshot-load).</summary>
    /// <exception cref="SnapshotLoadFatalException">Firecracker answers 400 with this text and ends the process.</exception>
    public void LoadSnapshot(LoadParams p)
    {
        RequirePreBoot();
        if (BootPath)
        {
            throw new VmmActionException("Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.");
        }

        const string prefix = "Load snapshot error: Failed to restore from snapshot: ";
        const string stateError = prefix + "Failed to get snapshot state from file: ";
        string text;
        try
        {
            text = File.ReadAllText(p.SnapshotPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SnapshotLoadFatalException(stateError + $"Failed to open snapshot file: {IoText(e)}");
        }

        // snapshot/mod.rs SnapshotError: what cannot be decoded is a bitcode error (garbage, or another format); a
        // well-formed state of another data version is InvalidFormatVersion.
        const string bitcode = stateError + "Failed to load snapshot state from file: An error occurred during bitcode serialization: bitcode error";
        var newline = text.IndexOf('\n', StringComparison.Ordinal);
        if (!text.StartsWith(SnapshotMagic, StringComparison.Ordinal) || newline < 0)
        {
            throw new SnapshotLoadFatalException(bitcode);
        }

        JsonObject state;
        try
        {
            state = JsonNode.Parse(text[(newline + 1)..])!.AsObject();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new SnapshotLoadFatalException(bitcode);
        }

        var version = text[SnapshotMagic.Length..newline];
        if (version != SnapshotDataVersion)
        {
            // snapshot/mod.rs SnapshotError::InvalidFormatVersion (a semver Version, printed without the "v"), inside
            // persist.rs SnapshotStateFromFileError::Load.
            throw new SnapshotLoadFatalException(stateError + $"Failed to load snapshot state from file: Invalid data version: {version.TrimStart('v')}");
        }

        var vmBytes = Encoding.UTF8.GetBytes(JsonText.Of(state["vm"]));
        var config = SerdeParser.Parse(vmBytes, Schemas.VmmConfig)!.AsObject();
        var memSize = (long)config["machine-config"]!["mem_size_mib"]!.GetValue<ulong>() * 1024 * 1024;

        // persist.rs: overrides are applied to the state as it is read; one naming a device the snapshot does not
        // have fails there.
        var nets = config["network-interfaces"]?.AsArray() ?? [];
        foreach (var (iface, dev) in p.NetworkOverrides)
        {
            var net = nets.FirstOrDefault(n => n!["iface_id"]!.GetValue<string>() == iface)
                ?? throw new SnapshotLoadFatalException(stateError + "Unknown Network Device.");
            net["host_dev_name"] = dev;
        }

        if (p.VsockOverride is not null)
        {
            // persist.rs SnapshotStateFromFileError::UnknownVsockDevice, as UnknownNetworkDevice above (09-snapshot-load).
            var vs = config["vsock"] as JsonObject ?? throw new SnapshotLoadFatalException(stateError + "Unknown Vsock Device.");
            vs["uds_path"] = p.VsockOverride;
        }

        // persist.rs validate_cpu_vendor logs both, from the VMM (main) thread.
        Log.Info("main", $"Host CPU vendor ID: {CpuVendor.Bytes(CpuVendor.Host)}", LogOrigin.Persist);
        Log.Info("main", $"Snapshot CPU vendor ID: {CpuVendor.Bytes(state["cpu_vendor"]?.GetValue<string>() ?? CpuVendor.Host)}", LogOrigin.Persist);

        if (p.MemBackendType == "File")
        {
            const string fromFile = prefix + "Failed to load guest memory: Error creating guest memory from file: ";
            var fd = NativeMethods.Open(p.MemPath, NativeMethods.O_RDONLY);
            if (fd < 0)
            {
                throw new SnapshotLoadFatalException(fromFile + $"Failed to load guest memory: {NativeMethods.OsError(-fd)}");
            }

            NativeMethods.Close(fd);
            if (new FileInfo(p.MemPath).Length < memSize)
            {
                throw new SnapshotLoadFatalException(fromFile + "Failed to restore guest memory: Total sum of memory regions exceeds largest possible file offset");
            }

            // As Firecracker's File backend: guest memory is the file mapped MAP_PRIVATE, so processes restored from
            // one file share its page-cache pages until they write (copy-on-write), for the life of the process. The
            // file is opened read-only, as Firecracker opens it (persist.rs guest_memory_from_file: File::open): a
            // private mapping needs no write access, and a jailed VMM may only read a template's memory file.
            // (MemoryMappedFile.CreateFromFile(path, …, CopyOnWrite) would open it read-write, refused to a jail.)
            var memStream = new FileStream(p.MemPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            _guestMemory = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(memStream, null, 0,
                System.IO.MemoryMappedFiles.MemoryMappedFileAccess.CopyOnWrite, HandleInheritability.None, leaveOpen: false);
            _guestMemoryView = _guestMemory.CreateViewAccessor(0, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.CopyOnWrite);
        }
        else if (UffdConnectError(p.MemPath) is { } uffdError)
        {
            throw new SnapshotLoadFatalException(prefix + $"Failed to load guest memory: Error creating guest memory from uffd: Failed to connect to UDS Unix stream: {uffdError}");
        }

        // The load's track_dirty_pages replaces the machine's (09-snapshot-load).
        if (config["machine-config"] is JsonObject machine)
        {
            machine["track_dirty_pages"] = p.TrackDirtyPages;
        }

        try
        {
            ConfigLoader.Apply(this, config, checkFiles: false);
        }
        catch (VmmActionException e)
        {
            var detail = e.Message.StartsWith("Vsock config error: Cannot create backend for vsock device: ", StringComparison.Ordinal)
                ? "Failed to build microVM from snapshot: Failed to restore devices: Error restoring MMIO devices: VsockUnixBackend: "
                  + e.Message["Vsock config error: Cannot create backend for vsock device: ".Length..]
                : "Failed to build microVM from snapshot: " + e.Message;
            throw new SnapshotLoadFatalException(prefix + detail);
        }

        Resources.MmdsData = state["mmds"]?.DeepClone();
        Resources.MmdsInitialized = Resources.MmdsData is not null;
        var guest = NewGuest();
        Interlocked.Exchange(ref _balloonActiveAt, Stopwatch.GetTimestamp());
        guest.Restored();
        Guest = guest;
        State = VmState.Paused;
        if (p.ResumeVm)
        {
            Log.Info("main", "Artificially kick devices", LogOrigin.Devices);
            State = VmState.Running;
            guest.SetRunning(true);
        }
    }

    /// <summary>The error connecting to a UFFD handler's socket gives, or null when one listens there. The stand-in
    /// speaks no UFFD protocol: a listening handler is taken as ready.</summary>
    private static string? UffdConnectError(string path)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            socket.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            return null;
        }
        catch (System.Net.Sockets.SocketException e)
        {
            var errno = e.SocketErrorCode switch
            {
                System.Net.Sockets.SocketError.AddressNotAvailable => 2,
                System.Net.Sockets.SocketError.ConnectionRefused => 111,
                System.Net.Sockets.SocketError.AccessDenied => 13,
                _ => File.Exists(path) || Directory.Exists(path) ? 111 : 2,
            };
            return NativeMethods.OsError(errno);
        }
    }

    public static string IoText(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => NativeMethods.OsError(2),
        UnauthorizedAccessException => NativeMethods.OsError(13),
        _ => e.HResult is > 0 and < 200 ? NativeMethods.OsError(e.HResult) : e.Message,
    };

    /// <summary>Renders a JSON body for a 200 answer.</summary>
    public static string Json(Action<Utf8JsonWriter> write) => JsonText.Write(write);
}

/// <summary>A snapshot load that failed after Firecracker started restoring: it answers 400, then exits 1.</summary>
internal sealed class SnapshotLoadFatalException(string message) : Exception(message);
