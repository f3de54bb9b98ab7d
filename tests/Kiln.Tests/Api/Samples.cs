using System.Text.Json.Nodes;
using Kiln.Api;

namespace Kiln.Tests.Api;

/// <summary>A fully populated instance of every wire record (every optional property set), for schema and round-trip checks.</summary>
internal static class Samples
{
    public static TokenBucket TokenBucket { get; } = new() { OneTimeBurst = 1_000_000, RefillTime = 100, Size = 65536 };

    public static RateLimiter RateLimiter { get; } = new() { Bandwidth = TokenBucket, Ops = TokenBucket with { OneTimeBurst = 10, Size = 100 } };

    public static readonly IReadOnlyDictionary<Type, object> All = new Dictionary<Type, object>
    {
        [typeof(ApiError)] = new ApiError { FaultMessage = "Boot source error", Error = "Invalid HTTP Version" },
        [typeof(InstanceInfo)] = new InstanceInfo { AppName = "Firecracker", Id = "sandbox-1", State = InstanceState.NotStarted, VmmVersion = "1.16.1" },
        [typeof(InstanceActionInfo)] = new InstanceActionInfo { ActionType = InstanceActionType.SendCtrlAltDel },
        [typeof(FirecrackerVersionInfo)] = new FirecrackerVersionInfo { FirecrackerVersion = "1.16.1" },
        [typeof(BootSource)] = new BootSource { KernelImagePath = "/k/vmlinux", InitrdPath = "/k/initrd", BootArgs = "console=ttyS0 reboot=k panic=1" },
        [typeof(TokenBucket)] = TokenBucket,
        [typeof(RateLimiter)] = RateLimiter,
        [typeof(Drive)] = new Drive
        {
            DriveId = "rootfs", Partuuid = "0eaa91a0-01", IsRootDevice = true, CacheType = DriveCacheType.Writeback,
            IsReadOnly = true, PathOnHost = "/img/rootfs.ext4", RateLimiter = RateLimiter, IoEngine = DriveIoEngine.Async,
            Socket = "/run/vhost.sock",
        },
        [typeof(PartialDrive)] = new PartialDrive { DriveId = "drive_0", PathOnHost = "/img/data.ext4", RateLimiter = RateLimiter },
        [typeof(Pmem)] = new Pmem { Id = "pmem0", PathOnHost = "/img/pmem", RootDevice = false, ReadOnly = true, RateLimiter = RateLimiter },
        [typeof(PartialPmem)] = new PartialPmem { Id = "pmem0", RateLimiter = RateLimiter },
        [typeof(NetworkInterface)] = new NetworkInterface
        {
            IfaceId = "eth0", HostDevName = "tap0", GuestMac = "06:00:AC:10:00:02", Mtu = 1500,
            RxRateLimiter = RateLimiter, TxRateLimiter = RateLimiter,
        },
        [typeof(PartialNetworkInterface)] = new PartialNetworkInterface { IfaceId = "eth0", RxRateLimiter = RateLimiter, TxRateLimiter = RateLimiter },
        [typeof(MachineConfiguration)] = new MachineConfiguration
        {
            VcpuCount = 2, MemSizeMib = 256, Smt = false, CpuTemplate = CpuTemplate.T2S, TrackDirtyPages = true, HugePages = HugePages.Size2M,
        },
        [typeof(MachineConfigurationUpdate)] = new MachineConfigurationUpdate
        {
            VcpuCount = 4, MemSizeMib = 512, Smt = true, CpuTemplate = CpuTemplate.None, TrackDirtyPages = false, HugePages = HugePages.None,
        },
        [typeof(CpuidRegisterModifier)] = new CpuidRegisterModifier { Register = CpuidRegister.Ecx, Bitmap = "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxx0001" },
        [typeof(CpuidLeafModifier)] = new CpuidLeafModifier
        {
            Leaf = "0x1", Subleaf = "0x0", Flags = 0,
            Modifiers = [new CpuidRegisterModifier { Register = CpuidRegister.Eax, Bitmap = "0b00000000000000000000000000000001" }],
        },
        [typeof(MsrModifier)] = new MsrModifier { Addr = "0x10a", Bitmap = "0b0000000000000000000000000000000000000000000000000000000000000001" },
        [typeof(ArmRegisterModifier)] = new ArmRegisterModifier { Addr = "0x603000000013c020", Bitmap = "0bxxxx1" },
        [typeof(VcpuFeatures)] = new VcpuFeatures { Index = 0, Bitmap = "0b00000000000000000000000001100000" },
        [typeof(CpuConfig)] = new CpuConfig
        {
            KvmCapabilities = ["121", "!122"],
            CpuidModifiers = [new CpuidLeafModifier { Leaf = "0x7", Subleaf = "0", Flags = 1, Modifiers = [new CpuidRegisterModifier { Register = CpuidRegister.Edx, Bitmap = "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0" }] }],
            MsrModifiers = [new MsrModifier { Addr = "266", Bitmap = "0b1" }],
            RegModifiers = [new ArmRegisterModifier { Addr = "0x0", Bitmap = "0b0" }],
            VcpuFeatures = [new VcpuFeatures { Index = 1, Bitmap = "0b1" }],
        },
        [typeof(Balloon)] = new Balloon { AmountMib = 64, DeflateOnOom = true, StatsPollingIntervalS = 1, FreePageHinting = true, FreePageReporting = false },
        [typeof(BalloonUpdate)] = new BalloonUpdate { AmountMib = 32 },
        [typeof(BalloonStats)] = new BalloonStats
        {
            TargetPages = 8192, ActualPages = 8000, TargetMib = 32, ActualMib = 31, SwapIn = 1, SwapOut = 2, MajorFaults = 3,
            MinorFaults = 4, FreeMemory = 5, TotalMemory = 6, AvailableMemory = 7, DiskCaches = 8, HugetlbAllocations = 9,
            HugetlbFailures = 10, OomKill = 11, AllocStall = 12, AsyncScan = 13, DirectScan = 14, AsyncReclaim = 15, DirectReclaim = 16,
        },
        [typeof(BalloonStatsUpdate)] = new BalloonStatsUpdate { StatsPollingIntervalS = 5 },
        [typeof(BalloonStartCmd)] = new BalloonStartCmd { AcknowledgeOnStop = true },
        [typeof(BalloonHintingStatus)] = new BalloonHintingStatus { HostCmd = 2, GuestCmd = 1 },
        [typeof(SnapshotCreateParams)] = new SnapshotCreateParams { MemFilePath = "/s/mem", SnapshotPath = "/s/state", SnapshotType = SnapshotType.Diff },
        [typeof(MemoryBackend)] = new MemoryBackend { BackendType = MemoryBackendType.Uffd, BackendPath = "/s/uffd.sock" },
        [typeof(NetworkOverride)] = new NetworkOverride { IfaceId = "eth0", HostDevName = "tap9" },
        [typeof(VsockOverride)] = new VsockOverride { UdsPath = "/s/v2.sock" },
        [typeof(SnapshotLoadParams)] = new SnapshotLoadParams
        {
            SnapshotPath = "/s/state", MemFilePath = "/s/mem", MemBackend = new MemoryBackend { BackendType = MemoryBackendType.File, BackendPath = "/s/mem" },
            EnableDiffSnapshots = false, TrackDirtyPages = true, ResumeVm = true,
            NetworkOverrides = [new NetworkOverride { IfaceId = "eth0", HostDevName = "tap1" }],
            VsockOverride = new VsockOverride { UdsPath = "/s/v.sock" }, ClockRealtime = true,
        },
        [typeof(Logger)] = new Logger { Level = FirecrackerLogLevel.Warning, LogPath = "/l/fc.log", ShowLevel = true, ShowLogOrigin = false, Module = "api_server::request" },
        [typeof(Metrics)] = new Metrics { MetricsPath = "/l/fc.metrics" },
        [typeof(MmdsConfig)] = new MmdsConfig { Version = MmdsVersion.V2, NetworkInterfaces = ["eth0"], Ipv4Address = "169.254.170.2", ImdsCompat = true },
        [typeof(Vsock)] = new Vsock { GuestCid = 3, UdsPath = "/v/v.sock", VsockId = "vsock0" },
        [typeof(EntropyDevice)] = new EntropyDevice { RateLimiter = RateLimiter },
        [typeof(SerialDevice)] = new SerialDevice { SerialOutPath = "/l/serial.out", RateLimiter = TokenBucket },
        [typeof(MemoryHotplugConfig)] = new MemoryHotplugConfig { TotalSizeMib = 1024, SlotSizeMib = 128, BlockSizeMib = 2 },
        [typeof(MemoryHotplugSizeUpdate)] = new MemoryHotplugSizeUpdate { RequestedSizeMib = 512 },
        [typeof(MemoryHotplugStatus)] = new MemoryHotplugStatus { TotalSizeMib = 1024, SlotSizeMib = 128, BlockSizeMib = 2, PluggedSizeMib = 256, RequestedSizeMib = 512 },
        [typeof(VmUpdate)] = new VmUpdate { State = VmState.Paused },
    };

    public static FullVmConfiguration FullVmConfiguration { get; } = new()
    {
        Balloon = Get<Balloon>(),
        Drives = [Get<Drive>(), Get<Drive>() with { DriveId = "drive_0", IsRootDevice = false }],
        BootSource = Get<BootSource>(),
        CpuConfig = Get<CpuConfig>(),
        Logger = Get<Logger>(),
        MachineConfig = Get<MachineConfiguration>(),
        Metrics = Get<Metrics>(),
        MemoryHotplug = Get<MemoryHotplugConfig>(),
        MmdsConfig = Get<MmdsConfig>(),
        NetworkInterfaces = [Get<NetworkInterface>()],
        Pmem = [Get<Pmem>()],
        Vsock = Get<Vsock>(),
        Entropy = Get<EntropyDevice>(),
    };

    public static JsonObject Mmds() => new() { ["latest"] = new JsonObject { ["meta-data"] = new JsonObject { ["hostname"] = "kiln" } } };

    public static T Get<T>() => (T)All[typeof(T)];

    /// <summary>A populated instance of <paramref name="type"/>, including the types not in <see cref="All"/>.</summary>
    public static object For(Type type) =>
        type == typeof(FullVmConfiguration) ? FullVmConfiguration
        : type == typeof(JsonObject) || type == typeof(JsonNode) ? Mmds()
        : All[type];

    /// <summary>Every wire record type with its spec definition name.</summary>
    public static IEnumerable<(Type Type, string Definition)> Definitions()
    {
        foreach (var type in All.Keys.Append(typeof(FullVmConfiguration)))
            yield return (type, DefinitionOf(type));
    }

    public static string DefinitionOf(Type type) => type.Name switch
    {
        nameof(ApiError) => "Error",
        nameof(FirecrackerVersionInfo) => "FirecrackerVersion",
        nameof(VmUpdate) => "Vm",
        nameof(MachineConfigurationUpdate) => "MachineConfiguration",
        _ => type.Name,
    };
}
