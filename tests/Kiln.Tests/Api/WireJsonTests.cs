using System.Text.Json;
using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Xunit;
using Kiln.Api;

namespace Kiln.Tests.Api;

public sealed class WireJsonTests
{
    private static readonly FirecrackerJsonContext Context = FirecrackerJsonContext.Default;

    public static TheoryData<string> RecordTypes() => [.. Samples.Definitions().Select(d => d.Type.Name)];

    private static string RoundTrip(object value, Type type)
    {
        var json = JsonSerializer.Serialize(value, type, Context);
        var back = JsonSerializer.Deserialize(json, type, Context)!;
        return JsonSerializer.Serialize(back, type, Context);
    }

    private static T RoundTrip<T>(T value)
    {
        var json = JsonSerializer.Serialize(value, typeof(T), Context);
        return (T)JsonSerializer.Deserialize(json, typeof(T), Context)!;
    }

    [Theory]
    [MemberData(nameof(RecordTypes))]
    public void Every_populated_record_survives_a_json_round_trip(string typeName)
    {
        var type = typeof(FirecrackerClient).Assembly.GetType("Kiln.Api." + typeName)!;
        var sample = Samples.For(type);

        Assert.Equal(JsonSerializer.Serialize(sample, type, Context), RoundTrip(sample, type));
    }

    [Fact]
    public void Optional_properties_left_null_are_not_written()
    {
        var json = JsonSerializer.Serialize(new Drive { DriveId = "rootfs", IsRootDevice = true }, Context.Drive);

        Assert.Equal("""{"drive_id":"rootfs","is_root_device":true}""", json);
    }

    [Fact]
    public void Property_names_are_snake_case_and_the_vm_config_sections_keep_their_dashes()
    {
        var json = JsonNode.Parse(JsonSerializer.Serialize(Samples.FullVmConfiguration, Context.FullVmConfiguration))!.AsObject();

        Assert.Equal(
            ["balloon", "drives", "boot-source", "cpu-config", "logger", "machine-config", "metrics", "memory-hotplug", "mmds-config", "network-interfaces", "pmem", "vsock", "entropy"],
            json.Select(p => p.Key));
        Assert.Equal(
            ["vcpu_count", "mem_size_mib", "smt", "cpu_template", "track_dirty_pages", "huge_pages"],
            json["machine-config"]!.AsObject().Select(p => p.Key));
    }

    [Theory]
    [InlineData(InstanceState.NotStarted, "\"Not started\"")]
    [InlineData(InstanceState.Running, "\"Running\"")]
    [InlineData(InstanceState.Paused, "\"Paused\"")]
    public void Instance_states_are_spelled_as_firecracker_spells_them(InstanceState state, string json)
    {
        Assert.Equal(json, JsonSerializer.Serialize(state, Context.Options));
        Assert.Equal(state, JsonSerializer.Deserialize<InstanceState>(json, Context.Options));
    }

    [Fact]
    public void Enum_values_are_spelled_as_firecracker_spells_them()
    {
        string S<T>(T value) => JsonSerializer.Serialize(value, Context.Options);

        Assert.Equal("\"2M\"", S(HugePages.Size2M));
        Assert.Equal("\"None\"", S(HugePages.None));
        Assert.Equal("\"Unsafe\"", S(DriveCacheType.Unsafe));
        Assert.Equal("\"Writeback\"", S(DriveCacheType.Writeback));
        Assert.Equal("\"Sync\"", S(DriveIoEngine.Sync));
        Assert.Equal("\"Async\"", S(DriveIoEngine.Async));
        Assert.Equal("\"InstanceStart\"", S(InstanceActionType.InstanceStart));
        Assert.Equal("\"SendCtrlAltDel\"", S(InstanceActionType.SendCtrlAltDel));
        Assert.Equal("\"FlushMetrics\"", S(InstanceActionType.FlushMetrics));
        Assert.Equal("\"Full\"", S(SnapshotType.Full));
        Assert.Equal("\"Diff\"", S(SnapshotType.Diff));
        Assert.Equal("\"Paused\"", S(VmState.Paused));
        Assert.Equal("\"Resumed\"", S(VmState.Resumed));
        Assert.Equal("\"Warning\"", S(FirecrackerLogLevel.Warning));
        Assert.Equal("\"T2CL\"", S(CpuTemplate.T2CL));
        Assert.Equal("\"eax\"", S(CpuidRegister.Eax));
        Assert.Equal("\"File\"", S(MemoryBackendType.File));
        Assert.Equal("\"V2\"", S(MmdsVersion.V2));
    }

    [Fact]
    public void Fields_a_newer_firecracker_adds_are_kept_through_a_round_trip()
    {
        const string json = """{"id":"a","state":"Running","vmm_version":"1.17.0","app_name":"Firecracker","boot_count":{"n":1}}""";

        var info = JsonSerializer.Deserialize(json, Context.InstanceInfo)!;

        Assert.Equal(InstanceState.Running, info.State);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(JsonSerializer.Serialize(info, Context.InstanceInfo))));
    }

    [Fact]
    public void A_vm_config_with_an_unknown_section_and_unknown_drive_field_keeps_both()
    {
        const string json = """{"drives":[{"drive_id":"a","is_root_device":false,"discard":true}],"serial":{"serial_out_path":"/x"}}""";

        var config = JsonSerializer.Deserialize(json, Context.FullVmConfiguration)!;

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(JsonSerializer.Serialize(config, Context.FullVmConfiguration))));
    }

    [Fact]
    public void A_missing_required_property_fails_deserialisation()
    {
        var ex = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("""{"drive_id":"a"}""", Context.Drive));

        Assert.Contains("is_root_device", ex.Message);
    }

    // ---- Property tests: random instances of the main records survive a round trip. ----------------------------

    /// <summary>FsCheck strings may hold lone surrogates, which are not text; JSON cannot carry them.</summary>
    private static string? Text(string? s) => s is null ? null : new string(s.Where(c => !char.IsSurrogate(c)).ToArray());

    private static string Id(NonEmptyString s) => Text(s.Get) is { Length: > 0 } t ? t : "x";

    [Property]
    public void Boot_sources_survive_a_round_trip(NonEmptyString kernel, string? initrd, string? args)
    {
        var value = new BootSource { KernelImagePath = Id(kernel), InitrdPath = Text(initrd), BootArgs = Text(args) };
        Assert.Equal(value, RoundTrip(value));
    }

    [Property]
    public void Drives_survive_a_round_trip(NonEmptyString id, bool root, string? partuuid, DriveCacheType? cache, bool? readOnly,
        string? path, DriveIoEngine? engine, string? socket, long? burst, long refill, long size, bool withLimiter)
    {
        var bucket = new TokenBucket { OneTimeBurst = burst, RefillTime = refill, Size = size };
        var value = new Drive
        {
            DriveId = Id(id), IsRootDevice = root, Partuuid = Text(partuuid), CacheType = cache, IsReadOnly = readOnly,
            PathOnHost = Text(path), IoEngine = engine, Socket = Text(socket),
            RateLimiter = withLimiter ? new RateLimiter { Bandwidth = bucket, Ops = burst is null ? null : bucket } : null,
        };
        Assert.Equal(value, RoundTrip(value));
    }

    [Property]
    public void Machine_configurations_survive_a_round_trip(int vcpus, int mem, bool? smt, CpuTemplate? template, bool? dirty, HugePages? huge)
    {
        var value = new MachineConfiguration { VcpuCount = vcpus, MemSizeMib = mem, Smt = smt, CpuTemplate = template, TrackDirtyPages = dirty, HugePages = huge };
        Assert.Equal(value, RoundTrip(value));
    }

    [Property]
    public void Instance_infos_survive_a_round_trip(NonEmptyString id, InstanceState state, NonEmptyString version)
    {
        var value = new InstanceInfo { AppName = "Firecracker", Id = Id(id), State = state, VmmVersion = Id(version) };
        Assert.Equal(value, RoundTrip(value));
    }

    [Property]
    public void Network_interfaces_survive_a_round_trip(NonEmptyString id, NonEmptyString tap, string? mac, int? mtu, long refill, long size)
    {
        var limiter = new RateLimiter { Ops = new TokenBucket { RefillTime = refill, Size = size } };
        var value = new NetworkInterface { IfaceId = Id(id), HostDevName = Id(tap), GuestMac = Text(mac), Mtu = mtu, RxRateLimiter = limiter };
        Assert.Equal(value, RoundTrip(value));
    }

    [Property]
    public void Snapshot_parameters_survive_a_round_trip(NonEmptyString snap, NonEmptyString mem, SnapshotType? type, bool? resume,
        MemoryBackendType backend, bool? dirty, string? iface, string? uds, bool? realtime)
    {
        var create = new SnapshotCreateParams { SnapshotPath = Id(snap), MemFilePath = Id(mem), SnapshotType = type };
        Assert.Equal(create, RoundTrip(create));

        var load = new SnapshotLoadParams
        {
            SnapshotPath = Id(snap), MemBackend = new MemoryBackend { BackendType = backend, BackendPath = Id(mem) },
            ResumeVm = resume, TrackDirtyPages = dirty, ClockRealtime = realtime,
            NetworkOverrides = iface is null ? null : [new NetworkOverride { IfaceId = Text(iface)!, HostDevName = "tap0" }],
            VsockOverride = uds is null ? null : new VsockOverride { UdsPath = Text(uds)! },
        };
        var back = RoundTrip(load);
        Assert.Equal(JsonSerializer.Serialize(load, Context.SnapshotLoadParams), JsonSerializer.Serialize(back, Context.SnapshotLoadParams));
        Assert.Equal(load.MemBackend, back.MemBackend);
        Assert.Equal(load.NetworkOverrides ?? [], back.NetworkOverrides ?? []);
    }

    [Property]
    public void Balloons_vsocks_and_loggers_survive_a_round_trip(int amount, bool deflate, int? interval, uint cid, NonEmptyString uds,
        FirecrackerLogLevel? level, string? logPath, bool? showLevel)
    {
        var balloon = new Balloon { AmountMib = amount, DeflateOnOom = deflate, StatsPollingIntervalS = interval };
        var vsock = new Vsock { GuestCid = cid, UdsPath = Id(uds) };
        var logger = new Logger { Level = level, LogPath = Text(logPath), ShowLevel = showLevel };

        Assert.Equal(balloon, RoundTrip(balloon));
        Assert.Equal(vsock, RoundTrip(vsock));
        Assert.Equal(logger, RoundTrip(logger));
    }

    [Property]
    public void Mmds_contents_survive_a_round_trip(NonEmptyString key, string? value, int number)
    {
        var contents = new JsonObject { [Id(key)] = new JsonObject { ["v"] = Text(value), ["n"] = number, ["a"] = new JsonArray(1, "two") } };

        var back = RoundTrip(contents);

        Assert.True(JsonNode.DeepEquals(contents, back));
    }
}
