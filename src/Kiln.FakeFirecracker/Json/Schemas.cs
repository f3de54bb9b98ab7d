// Field names and order follow Firecracker v1.16.1's Rust structs (src/vmm/src/vmm_config/*.rs), because serde lists
// them in declaration order in "expected one of …". Where a struct was not checked against the source, the order is
// the one GET /vm/config prints, or the spec's; those are marked ASSUMED.
using static Kiln.FakeFirecracker.Json.SerdeField;

namespace Kiln.FakeFirecracker.Json;

internal static class Schemas
{
    private static readonly StrSpec S = StrSpec.Instance;
    private static readonly BoolSpec B = BoolSpec.Instance;

    public static readonly StructSpec TokenBucket = new("TokenBucketConfig",
        Req("size", UIntSpec.U64), Opt("one_time_burst", UIntSpec.U64), Req("refill_time", UIntSpec.U64));

    public static readonly StructSpec RateLimiter = new("RateLimiterConfig",
        Opt("bandwidth", TokenBucket), Opt("ops", TokenBucket));

    public static readonly StructSpec BootSource = new("BootSourceConfig",
        Req("kernel_image_path", S), Opt("initrd_path", S), Opt("boot_args", S));

    // The x86_64 variants, in the order serde lists them (07-preboot-devices).
    public static readonly EnumSpec CpuTemplate = new("StaticCpuTemplate", "C3", "T2", "T2S", "None", "T2CL", "T2A");
    public static readonly EnumSpec HugePages = new("HugePageConfig", "None", "2M");

    public static readonly StructSpec MachineConfig = new("MachineConfig",
        Req("vcpu_count", UIntSpec.U8), Req("mem_size_mib", UIntSpec.USize), Def("smt", B), Opt("cpu_template", CpuTemplate),
        Def("track_dirty_pages", B), Def("huge_pages", HugePages));

    public static readonly StructSpec MachineConfigUpdate = new("MachineConfigUpdate",
        Opt("vcpu_count", UIntSpec.U8), Opt("mem_size_mib", UIntSpec.USize), Opt("smt", B), Opt("cpu_template", CpuTemplate),
        Opt("track_dirty_pages", B), Opt("huge_pages", HugePages));

    public static readonly EnumSpec CacheType = new("CacheType", "Unsafe", "Writeback");
    public static readonly EnumSpec IoEngine = new("FileEngineType", "Async", "Sync");

    public static readonly StructSpec Drive = new("BlockDeviceConfig",
        Req("drive_id", S), Opt("partuuid", S), Req("is_root_device", B), Def("cache_type", CacheType), Opt("is_read_only", B),
        Opt("path_on_host", S), Opt("rate_limiter", RateLimiter), Opt("io_engine", IoEngine), Opt("socket", S));

    public static readonly StructSpec DriveUpdate = new("BlockDeviceUpdateConfig",
        Req("drive_id", S), Opt("path_on_host", S), Opt("rate_limiter", RateLimiter));

    public static readonly StructSpec Pmem = new("PmemConfig",
        Req("id", S), Req("path_on_host", S), Def("root_device", B), Def("read_only", B), Opt("rate_limiter", RateLimiter));

    public static readonly StructSpec PmemUpdate = new("PmemUpdateConfig", Req("id", S), Opt("rate_limiter", RateLimiter));

    // mtu follows guest_mac, as GET /vm/config prints the struct (07-preboot-devices).
    // ASSUMED wording for a bad MAC (MacAddr's Deserialize uses a custom error).
    private static readonly CheckedStrSpec Mac = new(s => Vmm.MacAddress.TryParse(s, out _) ? null : $"invalid MAC address: {s}");

    public static readonly StructSpec Network = new("NetworkInterfaceConfig",
        Req("iface_id", S), Req("host_dev_name", S), Opt("guest_mac", Mac), Opt("mtu", UIntSpec.U16),
        Opt("rx_rate_limiter", RateLimiter), Opt("tx_rate_limiter", RateLimiter));

    public static readonly StructSpec NetworkUpdate = new("NetworkInterfaceUpdateConfig",
        Req("iface_id", S), Opt("rx_rate_limiter", RateLimiter), Opt("tx_rate_limiter", RateLimiter));

    public static readonly StructSpec Vsock = new("VsockDeviceConfig",
        Opt("vsock_id", S), Req("guest_cid", UIntSpec.U32), Req("uds_path", S));

    // logging.rs: LevelFilter's own Deserialize lower-cases the string and fails with custom("Invalid LevelFilter").
    private static readonly CheckedStrSpec Level = new(s => Vmm.FcLogger.TryParseLevel(s, out _) ? null : "Invalid LevelFilter");

    public static readonly StructSpec Logger = new("LoggerConfig",
        Opt("log_path", S), Opt("level", Level), Opt("show_level", B), Opt("show_log_origin", B), Opt("module", S));

    public static readonly StructSpec Metrics = new("MetricsConfig", Req("metrics_path", S));

    public static readonly StructSpec Balloon = new("BalloonDeviceConfig",
        Req("amount_mib", UIntSpec.U32), Req("deflate_on_oom", B), Def("stats_polling_interval_s", UIntSpec.U16),
        Def("free_page_hinting", B), Def("free_page_reporting", B));

    public static readonly StructSpec BalloonUpdate = new("BalloonUpdateConfig", Req("amount_mib", UIntSpec.U32));

    public static readonly StructSpec BalloonStatsUpdate = new("BalloonUpdateStatsConfig",
        Req("stats_polling_interval_s", UIntSpec.U16));

    public static readonly StructSpec BalloonHintingStart = new("StartHintingCmd", Def("acknowledge_on_stop", B));

    public static readonly StructSpec Entropy = new("EntropyDeviceConfig", Opt("rate_limiter", RateLimiter));

    public static readonly StructSpec Serial = new("SerialConfig", Opt("serial_out_path", S), Opt("rate_limiter", TokenBucket));

    public static readonly StructSpec MemoryHotplug = new("MemoryHotplugConfig",
        Req("total_size_mib", UIntSpec.USize), Def("block_size_mib", UIntSpec.USize), Def("slot_size_mib", UIntSpec.USize));

    public static readonly StructSpec MemoryHotplugUpdate = new("MemoryHotplugSizeUpdate",
        Req("requested_size_mib", UIntSpec.USize));

    // ipv4_address is a std::net::Ipv4Addr: its Deserialize fails with the AddrParseError text (07-preboot-devices).
    private static readonly CheckedStrSpec Ipv4 = new(s => Ipv4Text.TryParse(s, out _) ? null : "invalid IPv4 address syntax");

    public static readonly StructSpec MmdsConfig = new("MmdsConfig",
        Def("version", new EnumSpec("MmdsVersion", "V1", "V2")), Req("network_interfaces", new SeqSpec(S)),
        Opt("ipv4_address", Ipv4), Def("imds_compat", B));

    public static readonly StructSpec Action = new("ActionBody",
        Req("action_type", new EnumSpec("ActionType", "FlushMetrics", "InstanceStart", "SendCtrlAltDel")));

    public static readonly StructSpec Vm = new("Vm", Req("state", new EnumSpec("VmState", "Paused", "Resumed")));

    public static readonly StructSpec SnapshotCreate = new("CreateSnapshotParams",
        Def("snapshot_type", new EnumSpec("SnapshotType", "Diff", "Full")), Req("snapshot_path", S), Req("mem_file_path", S));

    public static readonly StructSpec MemBackend = new("MemBackendConfig",
        Req("backend_path", S), Req("backend_type", new EnumSpec("MemBackendType", "File", "Uffd")));

    public static readonly StructSpec NetworkOverride = new("NetworkOverride", Req("iface_id", S), Req("host_dev_name", S));

    public static readonly StructSpec VsockOverride = new("VsockOverride", Req("uds_path", S));

    public static readonly StructSpec SnapshotLoad = new("LoadSnapshotConfig",
        Req("snapshot_path", S), Opt("mem_file_path", S), Opt("mem_backend", MemBackend), Def("enable_diff_snapshots", B),
        Def("track_dirty_pages", B), Def("resume_vm", B), Def("network_overrides", new SeqSpec(NetworkOverride)),
        Opt("vsock_override", VsockOverride), Def("clock_realtime", B));

    // x86_64 build: the aarch64-only modifiers are unknown fields there.
    public static readonly StructSpec CpuConfig = new("CustomCpuTemplate",
        Def("kvm_capabilities", new SeqSpec(AnySpec.Instance)), Def("cpuid_modifiers", new SeqSpec(AnySpec.Instance)),
        Def("msr_modifiers", new SeqSpec(AnySpec.Instance)));

    /// <summary>The --config-file document (Firecracker's VmmConfig).</summary>
    public static readonly StructSpec VmmConfig = new("VmmConfig",
        Opt("balloon", Balloon), Def("drives", new SeqSpec(Drive)), Req("boot-source", BootSource),
        Opt("cpu-config", CpuConfig), Opt("logger", Logger), Opt("machine-config", MachineConfig), Opt("metrics", Metrics),
        Opt("mmds-config", MmdsConfig), Def("network-interfaces", new SeqSpec(Network)), Opt("vsock", Vsock),
        Opt("entropy", Entropy), Def("pmem", new SeqSpec(Pmem)), Opt("memory-hotplug", MemoryHotplug), Opt("serial", Serial));
}
