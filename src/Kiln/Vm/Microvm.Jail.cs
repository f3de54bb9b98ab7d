// A microVM under Firecracker's jailer: the description's host paths become paths inside the chroot (kernel and initrd
// under /boot, drives under /drives/<drive id>), the files are made visible there as the jail's settings say, the API
// socket, Firecracker's log and its metrics FIFO live inside the jail (owned by the jail's uid/gid, named to Firecracker
// by their chroot paths, read by Kiln from the host side), and clean-up removes the jail once the VMM has ended.
using Kiln.Host;
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    private const string JailedLogPath = "/firecracker.log";
    /// <summary>Where a jailed VMM writes its metrics: a FIFO inside the chroot, read from the host side.</summary>
    internal const string JailedMetricsPath = "/metrics.fifo";
    private const string JailedVsockPath = "/vsock.sock";
    private const string JailedConfigPath = "/config.json";
    private const string JailedMetadataPath = "/metadata.json";
    private const string HotplugPrefix = "/hotplug/";

    /// <summary>Whether this object launched the VMM (and so owns it when <see cref="MicrovmOptions.Ownership"/> is
    /// Owned): its child, or a jailed VMM it booted (in a PID namespace that is no child of ours).</summary>
    public bool LaunchedHere => _vmm.IsChild || _jailLaunchedHere;

    /// <summary>Whether this object booted or restored its VMM under the jailer (rather than re-attaching to one).</summary>
    private bool _jailLaunchedHere;

    /// <summary>
    /// Where Firecracker sees a boot-time drive: the host path itself without a jail; inside one, the path Kiln exposed
    /// the file at (a jailed restore's is the path its snapshot recorded), else a jailed boot's <c>/drives/&lt;id&gt;</c>.
    /// </summary>
    public string DrivePathForVmm(string driveId, string hostPath)
    {
        if (_jail is null)
            return hostPath;
        var full = Path.GetFullPath(hostPath);
        return _jail.Files.FirstOrDefault(f => f.HostPath == full && !f.PathInJail.StartsWith(HotplugPrefix, StringComparison.Ordinal))?.PathInJail
            ?? "/drives/" + driveId;
    }

    /// <summary>How a jailed restore's settings expose files (a restore has no description to carry them).</summary>
    private Host.JailFileExposure? _restoredJailExposure;
    private JailedVmm? _jail;

    /// <summary>The jail, when the VMM runs under the jailer.</summary>
    public JailedVmm? Jail => _jail;

    /// <summary>The jail's host paths for options: the API socket (and the log) are inside the chroot.</summary>
    /// <exception cref="ArgumentException">A console keeper for a daemonizing jail, or no Id.</exception>
    internal static MicrovmOptions JailedOptions(MicrovmOptions options, JailSettings jail)
    {
        JailedVmm.RefuseConsoleKeeperWhenDaemonizing(jail, options.Ownership == VmmOwnership.Detached ? options.ConsoleKeeper : null, nameof(options));
        var layout = JailLayout.For(jail, options.FirecrackerPath, options.Id ?? throw new ArgumentException("a jailed microVM needs an Id", nameof(options)));
        return options with
        {
            SocketPath = layout.ApiSocketOnHost,
            LogPath = options.LogPath is null ? null : layout.OnHost(JailedLogPath),
            MetricsPath = options.MetricsPath is null ? null : layout.OnHost(JailedMetricsPath),
        };
    }

    /// <summary>The description as the jailed VMM sees it, and the host files behind its paths.</summary>
    internal static (MachineDescription Description, IReadOnlyList<JailFile> Files) InJail(MachineDescription description)
    {
        var files = new List<JailFile> { new(description.BootSource.KernelImagePath, "/boot/kernel", ReadOnly: true) };
        var boot = description.BootSource with { KernelImagePath = "/boot/kernel" };
        if (description.BootSource.InitrdPath is { } initrd)
        {
            files.Add(new JailFile(initrd, "/boot/initrd", ReadOnly: true));
            boot = boot with { InitrdPath = "/boot/initrd" };
        }
        var devices = description.Devices.Select(device =>
        {
            // The VMM binds its vsock socket inside the jail; the caller's path becomes a link to it (LinkVsock).
            if (device is MachineVsock vsock)
                return vsock with { Vsock = vsock.Vsock with { UdsPath = JailedVsockPath } };
            if (device is not MachineDrive { Drive: { PathOnHost: { } host } drive } machineDrive)
                return device;
            var inJail = "/drives/" + drive.DriveId;
            files.Add(new JailFile(host, inJail, drive.IsReadOnly == true));
            return machineDrive with { Drive = drive with { PathOnHost = inJail } };
        }).ToList();
        return (description with { BootSource = boot, Devices = devices }, files);
    }

    /// <summary>
    /// Makes the caller's vsock path a symbolic link to the socket the jailed VMM binds inside its chroot, so every
    /// host-side dialer (the agent, <c>kiln vsock</c>, a <c>VsockDialer</c>) keeps using the caller's path: connect(2)
    /// follows the link. Guest-initiated connections go the other way and need <see cref="ListenVsock"/>.
    /// </summary>
    private static void LinkVsock(string udsPath, JailLayout layout)
    {
        var link = Path.GetFullPath(udsPath);
        DeleteFile(link);
        File.CreateSymbolicLink(link, layout.OnHost(JailedVsockPath));
    }

    /// <summary>
    /// Listens for the guest's connections to host port <paramref name="port"/> on this VM's vsock device: at
    /// <c>&lt;uds_path&gt;_&lt;port&gt;</c>, which for a jailed VMM is inside its chroot (the only place it can reach),
    /// given to the jail's uid/gid so the unprivileged VMM may connect.
    /// </summary>
    /// <exception cref="InvalidOperationException">The VM has no vsock device (or was re-attached without its description).</exception>
    /// <exception cref="Kiln.Host.Vsock.VsockListenException">A live listener holds the path, or it cannot be bound.</exception>
    public Kiln.Host.Vsock.VsockListener ListenVsock(uint port)
    {
        var udsPath = Description?.Vsock?.UdsPath ?? throw new InvalidOperationException("This microVM has no vsock device (or was re-attached without its description)");
        if (_jail is null)
            return Kiln.Host.Vsock.VsockListener.Listen(udsPath, port);
        var listener = Kiln.Host.Vsock.VsockListener.Listen(_jail.Layout.OnHost(JailedVsockPath), port);
        if (Kiln.Interop.LibC.LChown(listener.Path, _jail.Record.Uid, _jail.Record.Gid) != 0)
        {
            var errno = Kiln.Interop.LibC.LastErrno;
            listener.Dispose();
            throw new IOException($"cannot give {listener.Path} to the jail's {_jail.Record.Uid}:{_jail.Record.Gid}: errno {errno}");
        }
        return listener;
    }

    /// <summary>Starts the VMM under the jailer: the spawn step of a jailed boot.</summary>
    private static async Task<JailedVmm> LaunchJailedAsync(MachineDescription description, MicrovmOptions options, StartAttempt attempt, CancellationToken ct)
    {
        var jail = description.Jail!;
        var (inJail, files) = InJail(description);
        var arguments = JailedArguments(options);
        var written = new List<JailWrittenFile>();
        if (options.StartPath == MicrovmStartPath.ConfigFile)
        {
            // The document names the paths the VMM sees; a config file has no metadata key, so the first MMDS
            // document goes beside it as --metadata.
            written.Add(new JailWrittenFile(JailedConfigPath, ConfigFile.Serialize(inJail)));
            arguments = arguments with { ConfigFilePath = JailedConfigPath };
            if (description.MmdsDocument is { } document)
            {
                written.Add(new JailWrittenFile(JailedMetadataPath, System.Text.Encoding.UTF8.GetBytes(document.ToJsonString())));
                arguments = arguments with { MetadataPath = JailedMetadataPath };
            }
        }
        return await JailedVmm.LaunchAsync(JailedLaunch(options, jail, arguments, files, attempt) with { WrittenFiles = written }, options.TimeProvider, ct)
            .ConfigureAwait(false);
    }

    /// <summary>Firecracker's flags inside a jail: the API socket, log and metrics FIFO at their chroot paths.</summary>
    private static VmmArguments JailedArguments(MicrovmOptions options) =>
        new VmmArguments(JailLayout.ApiSocketInJail).WithLog(options.LogPath is null ? null : JailedLogPath)
            with { MetricsPath = options.MetricsPath is null ? null : JailedMetricsPath };

    /// <summary>How a jailed boot or restore launches its VMM: <paramref name="files"/> made visible in the chroot,
    /// the log and metrics FIFO made there; detached, its serial input FIFO and (when asked for) its console keeper,
    /// whose files become the attempt's.</summary>
    private static JailedLaunchOptions JailedLaunch(MicrovmOptions options, JailSettings jail, VmmArguments arguments, IReadOnlyList<JailFile> files,
        StartAttempt attempt)
    {
        var detached = options.Ownership == VmmOwnership.Detached;
        attempt.AddConsoleKeeperFiles();
        return new()
        {
            Jail = jail,
            FirecrackerPath = options.FirecrackerPath,
            Id = options.Id!,
            Arguments = arguments,
            OutputPath = options.ConsolePath,
            Detached = detached,
            ConsoleKeeper = detached ? options.ConsoleKeeper : null,
            OutputRotation = options.ConsoleRotation,
            InputPath = attempt.CreateConsoleInput(),
            Files = files,
            EmptyFiles = options.LogPath is null ? [] : [JailedLogPath],
            Fifos = options.MetricsPath is null ? [] : [JailedMetricsPath],
            Environment = options.Environment,
            ReadyTimeout = options.ApiReadyTimeout,
        };
    }

    /// <summary>
    /// Attaches to a jailed VMM recorded earlier (<see cref="JailedVmm.Record"/>); null when it is gone.
    /// </summary>
    /// <param name="record">The jail, as recorded.</param>
    /// <param name="options">Its paths and timeouts.</param>
    /// <param name="state">The lifecycle state last recorded for it: Running or Paused.</param>
    /// <param name="consoleKeeper">Its console keeper (<see cref="ConsoleKeeper"/>), as recorded, if it was started with one.</param>
    public static Microvm? TryAttachJailed(JailRecord record, MicrovmOptions options, MicrovmState state, ProcessIdentity? consoleKeeper = null)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(options);
        options = options with { SocketPath = record.Layout.ApiSocketOnHost };
        options.Validate();
        var jail = JailedVmm.TryAttach(record, options.ConsolePath, consoleKeeper);
        return jail is null ? null : new Microvm(options, options.CreateLogger(), jail.Process, state, description: null) { _jail = jail };
    }

    /// <summary>Makes a file visible inside the jail for hot-plug; returns its path there (the host path without a jail).</summary>
    public string ExposeForHotplug(string hostPath, string driveId, bool readOnly)
    {
        if (_jail is null)
            return hostPath;
        var method = Description?.Jail?.FileExposure ?? _restoredJailExposure ?? (_jail.Record.Files.Count > 0 ? _jail.Record.Files[0].Method : Host.JailFileExposure.HardLink);
        // A bind mount made now would not reach the jail's private mount namespace, and a copy would keep the guest's
        // writes from the caller's file: hot-plug into a bind-mount jail hard-links, on the chroot's file system only.
        if (method == Host.JailFileExposure.BindMount)
        {
            method = Host.ChrootFiles.SameFileSystem(hostPath, _jail.Layout.Root)
                ? Host.JailFileExposure.HardLink
                : throw new IOException($"{hostPath} cannot be hot-plugged into the jail: it is on another file system than {_jail.Layout.Root}, and a bind mount made now would not reach the jail");
        }
        return _jail.ExposeFile(new JailFile(hostPath, HotplugPrefix + driveId, readOnly), method).PathInJail;
    }

    /// <summary>Takes a hot-unplugged drive's file out of the jail again.</summary>
    public void WithdrawHotplug(string driveId)
    {
        if (_jail?.Files.FirstOrDefault(f => f.PathInJail == HotplugPrefix + driveId) is { } file)
            _jail.WithdrawFile(file);
    }

    /// <summary>
    /// A jailed VMM writes only inside its chroot, as the jail's uid: the snapshot goes to a directory of the jail's
    /// made for it there, then its files are moved to the caller's host paths and given to this process (0644: any jail
    /// that later loads them reads them without their being re-owned, see ChrootFiles.ExposeShared). Fresh names in
    /// the jail: a jailed restore's <c>/snapshot/*</c> are hard links to its snapshot's files, which a snapshot written
    /// there would overwrite. A failure leaves no file at the caller's paths.
    /// </summary>
    private async Task CreateJailedSnapshotAsync(JailedVmm jail, Kiln.Api.SnapshotCreateParams parameters, CancellationToken ct)
    {
        var inJail = $"/kiln-snapshot-{Guid.NewGuid():N}";
        var onHost = jail.Layout.OnHost(inJail);
        Directory.CreateDirectory(onHost);
        var moved = new List<string>();
        try
        {
            if (Kiln.Interop.LibC.LChown(onHost, jail.Record.Uid, jail.Record.Gid) != 0 || Kiln.Interop.LibC.Chmod(onHost, 0x1C0) != 0)
                throw new IOException($"cannot give {onHost} to the jail's {jail.Record.Uid}:{jail.Record.Gid}: errno {Kiln.Interop.LibC.LastErrno}");
            ArgumentException.ThrowIfNullOrEmpty(parameters.MemFilePath, nameof(parameters));
            await Client.CreateSnapshotAsync(parameters with { SnapshotPath = inJail + "/state", MemFilePath = inJail + "/mem" }, ct).ConfigureAwait(false);
            foreach (var (from, to) in new[] { (onHost + "/state", parameters.SnapshotPath), (onHost + "/mem", parameters.MemFilePath) })
            {
                File.Move(from, to, overwrite: true);
                moved.Add(to);
                if (Kiln.Interop.LibC.LChown(to, Kiln.Interop.LibC.GetEuid(), Kiln.Interop.LibC.GetEgid()) != 0 || Kiln.Interop.LibC.Chmod(to, 0x1A4) != 0)
                    throw new IOException($"cannot take {to} from the jail: errno {Kiln.Interop.LibC.LastErrno}");
            }
        }
        catch (Exception e)
        {
            foreach (var file in moved)
                CleanupFailures.Run(e, () => DeleteFile(file));
            throw;
        }
        finally
        {
            Directory.Delete(onHost, recursive: true);
        }
    }

    /// <summary>Removes the jail (tree, mounts, cgroups) once the VMM has ended; nothing without a jail.</summary>
    /// <exception cref="InvalidOperationException">The VMM still runs.</exception>
    public Task CleanupJailAsync(CancellationToken cancellationToken = default) =>
        _jail is null ? Task.CompletedTask : _jail.CleanupAsync(_options.TimeProvider, cancellationToken);
}
