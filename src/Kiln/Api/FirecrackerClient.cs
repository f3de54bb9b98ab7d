// The Firecracker API client: one method per operation of the v1.16.1 spec, named after its operationId, so a
// reader can map spec to code with grep. The transport is in FirecrackerClient.Transport.cs.
using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace Kiln.Api;

/// <summary>
/// A client of one Firecracker process's API socket. Requests are sent one at a time (Firecracker handles one at a
/// time) on a kept HTTP/1.1 connection that is re-opened when Firecracker closed it; only
/// <see cref="PutGuestDrivesAsync"/> writes several at once (pipelined, answered in order). Every request has a
/// deadline (<see cref="FirecrackerClientOptions.RequestTimeout"/>) counted from its turn on the connection.
/// </summary>
/// <remarks>
/// Failures are typed: <see cref="FirecrackerApiException"/> for a refusal (with Firecracker's <c>fault_message</c>),
/// <see cref="FirecrackerSocketNotFoundException"/>, <see cref="FirecrackerConnectionRefusedException"/> and
/// <see cref="FirecrackerConnectionClosedException"/> for the connection, <see cref="FirecrackerProtocolException"/>
/// for an unreadable answer, <see cref="FirecrackerTimeoutException"/> for the deadline, and
/// <see cref="OperationCanceledException"/> when the caller's token fired.
/// </remarks>
public sealed partial class FirecrackerClient : IDisposable, IAsyncDisposable
{
    /// <summary>Creates a client; it connects at the first request.</summary>
    /// <param name="socketPath">The API socket (<c>--api-sock</c>); at most <see cref="UnixSocketPath.MaxLength"/> bytes.</param>
    /// <param name="options">Deadlines, logger and clock; <see cref="FirecrackerClientOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">The path cannot be a Unix socket path.</exception>
    public FirecrackerClient(string socketPath, FirecrackerClientOptions? options = null)
    {
        UnixSocketPath.Validate(socketPath);
        Options = options ?? FirecrackerClientOptions.Default;
        ArgumentNullException.ThrowIfNull(Options.TimeProvider, "options.TimeProvider");
        ValidateTimeout(Options.RequestTimeout, "options.RequestTimeout");
        ValidateTimeout(Options.SnapshotTimeout, "options.SnapshotTimeout");
        SocketPath = socketPath;
        _endPoint = new UnixDomainSocketEndPoint(socketPath);
        _logger = LoggerOf(Options);
        _time = Options.TimeProvider;
        _json = CreateWriter(_body);
        _deadline = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
    }

    private static void ValidateTimeout(TimeSpan timeout, string name)
    {
        if (timeout != Timeout.InfiniteTimeSpan && (timeout <= TimeSpan.Zero || timeout.TotalMilliseconds > uint.MaxValue - 1))
            throw new ArgumentOutOfRangeException(name, timeout, "A deadline must be positive (or Timeout.InfiniteTimeSpan).");
    }

    /// <summary>The API socket this client talks to.</summary>
    public string SocketPath { get; }

    /// <summary>The settings this client was made with.</summary>
    public FirecrackerClientOptions Options { get; }

    // ---- Instance -------------------------------------------------------------------------------------------

    /// <summary><c>GET /</c> (describeInstance): id, state and version of the instance.</summary>
    public Task<InstanceInfo> DescribeInstanceAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.DescribeInstance, FirecrackerJsonContext.Default.InstanceInfo, cancellationToken);

    /// <summary><c>PUT /actions</c> (createSyncAction): start the instance, send Ctrl+Alt+Del or flush metrics.</summary>
    public Task CreateSyncActionAsync(InstanceActionInfo info, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.CreateSyncAction, null, info, FirecrackerJsonContext.Default.InstanceActionInfo, cancellationToken);

    /// <summary>Boots the configured microVM (<c>InstanceStart</c>; pre-boot only).</summary>
    public Task StartInstanceAsync(CancellationToken cancellationToken = default) =>
        CreateSyncActionAsync(new InstanceActionInfo { ActionType = InstanceActionType.InstanceStart }, cancellationToken);

    /// <summary>Sends Ctrl+Alt+Del to the guest (<c>SendCtrlAltDel</c>); answered at once, the guest decides what follows.</summary>
    public Task SendCtrlAltDelAsync(CancellationToken cancellationToken = default) =>
        CreateSyncActionAsync(new InstanceActionInfo { ActionType = InstanceActionType.SendCtrlAltDel }, cancellationToken);

    /// <summary>Writes the metrics now (<c>FlushMetrics</c>).</summary>
    public Task FlushMetricsAsync(CancellationToken cancellationToken = default) =>
        CreateSyncActionAsync(new InstanceActionInfo { ActionType = InstanceActionType.FlushMetrics }, cancellationToken);

    /// <summary><c>GET /version</c> (getFirecrackerVersion).</summary>
    public Task<FirecrackerVersionInfo> GetFirecrackerVersionAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.GetFirecrackerVersion, FirecrackerJsonContext.Default.FirecrackerVersionInfo, cancellationToken);

    /// <summary><c>GET /vm/config</c> (getExportVmConfig): the whole configuration so far.</summary>
    public Task<FullVmConfiguration> GetExportVmConfigAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.GetExportVmConfig, FirecrackerJsonContext.Default.FullVmConfiguration, cancellationToken);

    /// <summary><c>PATCH /vm</c> (patchVm): pause or resume (post-boot only).</summary>
    public Task PatchVmAsync(VmUpdate vm, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PatchVm, null, vm, FirecrackerJsonContext.Default.VmUpdate, cancellationToken);

    /// <summary>Pauses the guest's vCPUs (<c>PATCH /vm {"state":"Paused"}</c>); pausing a paused VM is not an error.</summary>
    public Task PauseAsync(CancellationToken cancellationToken = default) =>
        PatchVmAsync(new VmUpdate { State = VmState.Paused }, cancellationToken);

    /// <summary>Resumes the guest's vCPUs (<c>PATCH /vm {"state":"Resumed"}</c>).</summary>
    public Task ResumeAsync(CancellationToken cancellationToken = default) =>
        PatchVmAsync(new VmUpdate { State = VmState.Resumed }, cancellationToken);

    // ---- Machine --------------------------------------------------------------------------------------------

    /// <summary><c>PUT /boot-source</c> (putGuestBootSource; pre-boot only). Firecracker opens the kernel and initrd now.</summary>
    public Task PutGuestBootSourceAsync(BootSource bootSource, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutGuestBootSource, null, bootSource, FirecrackerJsonContext.Default.BootSource, cancellationToken);

    /// <summary><c>PUT /cpu-config</c> (putCpuConfiguration; pre-boot only).</summary>
    public Task PutCpuConfigurationAsync(CpuConfig cpuConfig, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutCpuConfiguration, null, cpuConfig, FirecrackerJsonContext.Default.CpuConfig, cancellationToken);

    /// <summary><c>GET /machine-config</c> (getMachineConfiguration).</summary>
    public Task<MachineConfiguration> GetMachineConfigurationAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.GetMachineConfiguration, FirecrackerJsonContext.Default.MachineConfiguration, cancellationToken);

    /// <summary><c>PUT /machine-config</c> (putMachineConfiguration; pre-boot only).</summary>
    public Task PutMachineConfigurationAsync(MachineConfiguration machineConfiguration, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutMachineConfiguration, null, machineConfiguration, FirecrackerJsonContext.Default.MachineConfiguration, cancellationToken);

    /// <summary><c>PATCH /machine-config</c> (patchMachineConfiguration; pre-boot only): change some fields.</summary>
    public Task PatchMachineConfigurationAsync(MachineConfigurationUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PatchMachineConfiguration, null, update, FirecrackerJsonContext.Default.MachineConfigurationUpdate, cancellationToken);

    /// <summary><c>PUT /hotplug/memory</c> (putMemoryHotplug; pre-boot only).</summary>
    public Task PutMemoryHotplugAsync(MemoryHotplugConfig config, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutMemoryHotplug, null, config, FirecrackerJsonContext.Default.MemoryHotplugConfig, cancellationToken);

    /// <summary><c>PATCH /hotplug/memory</c> (patchMemoryHotplug; post-boot only).</summary>
    public Task PatchMemoryHotplugAsync(MemoryHotplugSizeUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PatchMemoryHotplug, null, update, FirecrackerJsonContext.Default.MemoryHotplugSizeUpdate, cancellationToken);

    /// <summary><c>GET /hotplug/memory</c> (getMemoryHotplug; post-boot only).</summary>
    public Task<MemoryHotplugStatus> GetMemoryHotplugAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.GetMemoryHotplug, FirecrackerJsonContext.Default.MemoryHotplugStatus, cancellationToken);

    // ---- Block, pmem and network devices ----------------------------------------------------------------------

    /// <summary><c>PUT /drives/{drive_id}</c> (putGuestDriveByID), the id taken from <paramref name="drive"/>. Replaces a drive with the same id.</summary>
    public Task PutGuestDriveByIDAsync(Drive drive, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(drive);
        return SendAsync(ApiOperations.PutGuestDriveByID, drive.DriveId, drive, FirecrackerJsonContext.Default.Drive, cancellationToken);
    }

    /// <summary>
    /// <c>PUT /drives/{drive_id}</c> for each of <paramref name="drives"/>, in order, pipelined: the requests are written
    /// together and Firecracker answers them one by one, so a pre-boot pool of drives costs one round trip instead of
    /// one per drive. The first refusal is thrown (<see cref="FirecrackerApiException"/>, naming its drive); the
    /// drives after it were sent as well and may have been configured.
    /// </summary>
    public Task PutGuestDrivesAsync(IReadOnlyList<Drive> drives, CancellationToken cancellationToken = default) =>
        SendPipelinedAsync(ApiOperations.PutGuestDriveByID, drives, static d => d.DriveId, FirecrackerJsonContext.Default.Drive, cancellationToken);

    /// <summary><c>PATCH /drives/{drive_id}</c> (patchGuestDriveByID; post-boot only): swap the backing file or rate limiter.</summary>
    public Task PatchGuestDriveByIDAsync(PartialDrive drive, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(drive);
        return SendAsync(ApiOperations.PatchGuestDriveByID, drive.DriveId, drive, FirecrackerJsonContext.Default.PartialDrive, cancellationToken);
    }

    /// <summary><c>DELETE /drives/{drive_id}</c>: hot-unplug a drive (not in the spec; needs <c>--enable-pci</c>).</summary>
    public Task DeleteGuestDriveByIDAsync(string driveId, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.DeleteGuestDriveByID, driveId, cancellationToken);

    /// <summary><c>PUT /pmem/{id}</c> (putGuestPmemByID), the id taken from <paramref name="pmem"/>.</summary>
    public Task PutGuestPmemByIDAsync(Pmem pmem, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pmem);
        return SendAsync(ApiOperations.PutGuestPmemByID, pmem.Id, pmem, FirecrackerJsonContext.Default.Pmem, cancellationToken);
    }

    /// <summary><c>PATCH /pmem/{id}</c> (patchGuestPmemByID; post-boot only).</summary>
    public Task PatchGuestPmemByIDAsync(PartialPmem pmem, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pmem);
        return SendAsync(ApiOperations.PatchGuestPmemByID, pmem.Id, pmem, FirecrackerJsonContext.Default.PartialPmem, cancellationToken);
    }

    /// <summary><c>DELETE /pmem/{id}</c>: hot-unplug a pmem device (not in the spec; needs <c>--enable-pci</c>).</summary>
    public Task DeleteGuestPmemByIDAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.DeleteGuestPmemByID, id, cancellationToken);

    /// <summary><c>PUT /network-interfaces/{iface_id}</c> (putGuestNetworkInterfaceByID), the id taken from <paramref name="networkInterface"/>. Firecracker opens the TAP now.</summary>
    public Task PutGuestNetworkInterfaceByIDAsync(NetworkInterface networkInterface, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(networkInterface);
        return SendAsync(ApiOperations.PutGuestNetworkInterfaceByID, networkInterface.IfaceId, networkInterface, FirecrackerJsonContext.Default.NetworkInterface, cancellationToken);
    }

    /// <summary><c>PATCH /network-interfaces/{iface_id}</c> (patchGuestNetworkInterfaceByID; post-boot only): new rate limiters.</summary>
    public Task PatchGuestNetworkInterfaceByIDAsync(PartialNetworkInterface networkInterface, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(networkInterface);
        return SendAsync(ApiOperations.PatchGuestNetworkInterfaceByID, networkInterface.IfaceId, networkInterface, FirecrackerJsonContext.Default.PartialNetworkInterface, cancellationToken);
    }

    /// <summary><c>DELETE /network-interfaces/{iface_id}</c>: hot-unplug an interface (not in the spec; needs <c>--enable-pci</c>).</summary>
    public Task DeleteGuestNetworkInterfaceByIDAsync(string ifaceId, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.DeleteGuestNetworkInterfaceByID, ifaceId, cancellationToken);

    // ---- Other devices ----------------------------------------------------------------------------------------

    /// <summary><c>PUT /vsock</c> (putGuestVsock; pre-boot only). Firecracker binds <c>uds_path</c> now, so it must not exist.</summary>
    public Task PutGuestVsockAsync(Vsock vsock, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutGuestVsock, null, vsock, FirecrackerJsonContext.Default.Vsock, cancellationToken);

    /// <summary><c>PUT /entropy</c> (putEntropyDevice; pre-boot only).</summary>
    public Task PutEntropyDeviceAsync(EntropyDevice device, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutEntropyDevice, null, device, FirecrackerJsonContext.Default.EntropyDevice, cancellationToken);

    /// <summary><c>PUT /serial</c> (putSerialDevice; pre-boot only).</summary>
    public Task PutSerialDeviceAsync(SerialDevice device, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutSerialDevice, null, device, FirecrackerJsonContext.Default.SerialDevice, cancellationToken);

    // ---- Balloon ----------------------------------------------------------------------------------------------

    /// <summary><c>GET /balloon</c> (describeBalloonConfig).</summary>
    public Task<Balloon> DescribeBalloonConfigAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.DescribeBalloonConfig, FirecrackerJsonContext.Default.Balloon, cancellationToken);

    /// <summary><c>PUT /balloon</c> (putBalloon; pre-boot only).</summary>
    public Task PutBalloonAsync(Balloon balloon, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutBalloon, null, balloon, FirecrackerJsonContext.Default.Balloon, cancellationToken);

    /// <summary><c>PATCH /balloon</c> (patchBalloon; post-boot only): a new target size.</summary>
    public Task PatchBalloonAsync(BalloonUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PatchBalloon, null, update, FirecrackerJsonContext.Default.BalloonUpdate, cancellationToken);

    /// <summary><c>GET /balloon/statistics</c> (describeBalloonStats; post-boot only).</summary>
    public Task<BalloonStats> DescribeBalloonStatsAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.DescribeBalloonStats, FirecrackerJsonContext.Default.BalloonStats, cancellationToken);

    /// <summary><c>PATCH /balloon/statistics</c> (patchBalloonStatsInterval; post-boot only).</summary>
    public Task PatchBalloonStatsIntervalAsync(BalloonStatsUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PatchBalloonStatsInterval, null, update, FirecrackerJsonContext.Default.BalloonStatsUpdate, cancellationToken);

    /// <summary><c>PATCH /balloon/hinting/start</c> (startBalloonHinting): begin a free page hinting run.</summary>
    public Task StartBalloonHintingAsync(BalloonStartCmd command, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.StartBalloonHinting, null, command, FirecrackerJsonContext.Default.BalloonStartCmd, cancellationToken);

    /// <summary><c>GET /balloon/hinting/status</c> (describeBalloonHinting).</summary>
    public Task<BalloonHintingStatus> DescribeBalloonHintingAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.DescribeBalloonHinting, FirecrackerJsonContext.Default.BalloonHintingStatus, cancellationToken);

    /// <summary><c>PATCH /balloon/hinting/stop</c> (stopBalloonHinting): end the hinting run.</summary>
    public Task StopBalloonHintingAsync(CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.StopBalloonHinting, null, cancellationToken);

    // ---- Logging and metrics ----------------------------------------------------------------------------------

    /// <summary><c>PUT /logger</c> (putLogger; pre-boot only). Firecracker creates the log file.</summary>
    public Task PutLoggerAsync(Logger logger, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutLogger, null, logger, FirecrackerJsonContext.Default.Logger, cancellationToken);

    /// <summary><c>PUT /metrics</c> (putMetrics; pre-boot only). Firecracker creates the metrics file.</summary>
    public Task PutMetricsAsync(Metrics metrics, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutMetrics, null, metrics, FirecrackerJsonContext.Default.Metrics, cancellationToken);

    // ---- MMDS -------------------------------------------------------------------------------------------------

    /// <summary><c>PUT /mmds</c> (putMmds): replace the metadata store. Firecracker stores any JSON value, not only
    /// objects (07-preboot-devices puts a string).</summary>
    public Task PutMmdsAsync(JsonNode contents, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutMmds, null, contents, FirecrackerJsonContext.Default.JsonNode, cancellationToken);

    /// <summary><c>PATCH /mmds</c> (patchMmds): merge into the metadata store (JSON merge patch).</summary>
    public Task PatchMmdsAsync(JsonNode contents, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PatchMmds, null, contents, FirecrackerJsonContext.Default.JsonNode, cancellationToken);

    /// <summary><c>GET /mmds</c> (getMmds): the metadata store, whatever JSON value it holds (<c>{}</c> when empty).</summary>
    public Task<JsonNode> GetMmdsAsync(CancellationToken cancellationToken = default) =>
        GetAsync(ApiOperations.GetMmds, FirecrackerJsonContext.Default.JsonNode, cancellationToken);

    /// <summary><c>PUT /mmds/config</c> (putMmdsConfig; pre-boot only). The interfaces must exist already.</summary>
    public Task PutMmdsConfigAsync(MmdsConfig config, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.PutMmdsConfig, null, config, FirecrackerJsonContext.Default.MmdsConfig, cancellationToken);

    // ---- Snapshots --------------------------------------------------------------------------------------------

    /// <summary>
    /// <c>PUT /snapshot/create</c> (createSnapshot; only while paused). Uses
    /// <see cref="FirecrackerClientOptions.SnapshotTimeout"/>: writing guest memory takes time.
    /// </summary>
    public Task CreateSnapshotAsync(SnapshotCreateParams parameters, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.CreateSnapshot, null, parameters, FirecrackerJsonContext.Default.SnapshotCreateParams, cancellationToken);

    /// <summary>
    /// <c>PUT /snapshot/load</c> (loadSnapshot; only in a process that has configured nothing). A load that fails
    /// for any reason but that ends the Firecracker process. Uses <see cref="FirecrackerClientOptions.SnapshotTimeout"/>.
    /// </summary>
    public Task LoadSnapshotAsync(SnapshotLoadParams parameters, CancellationToken cancellationToken = default) =>
        SendAsync(ApiOperations.LoadSnapshot, null, parameters, FirecrackerJsonContext.Default.SnapshotLoadParams, cancellationToken);

    // ---- Lifetime ---------------------------------------------------------------------------------------------

    /// <summary>Closes the connection; a request in flight fails with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        // Only the socket holds an OS resource. The writer, gate and deadline source may still be in use by a
        // request in flight, which fails as soon as its socket is gone.
        DropConnection();
    }

    /// <inheritdoc cref="Dispose"/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
