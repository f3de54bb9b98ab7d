// Everything a microVM is configured with, as Firecracker's VmResources holds it, and its GET /vm/config rendering.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.FakeFirecracker.Vmm;

internal sealed record BootSourceConfig(string KernelImagePath, string? InitrdPath, string? BootArgs);

internal sealed record MachineConfig(int VcpuCount, ulong MemSizeMib, bool Smt, string? CpuTemplate, bool TrackDirtyPages, string HugePages)
{
    public static readonly MachineConfig Default = new(1, 128, false, null, false, "None");

    /// <summary>The CpuTemplate once PUT /cpu-config set a custom template: never printed.</summary>
    public const string CustomTemplate = "(custom)";
}

internal sealed record DriveConfig(
    string DriveId, string? Partuuid, bool IsRootDevice, string CacheType, bool IsReadOnly, string? PathOnHost,
    JsonNode? RateLimiter, string IoEngine, string? Socket);

internal sealed record NetConfig(string IfaceId, string HostDevName, string? GuestMac, JsonNode? RxRateLimiter, JsonNode? TxRateLimiter, int? Mtu);

internal sealed record VsockConfig(string? VsockId, uint GuestCid, string UdsPath);

internal sealed record BalloonConfig(uint AmountMib, bool DeflateOnOom, int StatsPollingIntervalS, bool FreePageHinting, bool FreePageReporting);

internal sealed record MemoryHotplugConfig(ulong TotalSizeMib, ulong BlockSizeMib, ulong SlotSizeMib);

internal sealed record MmdsConfig(string Version, IReadOnlyList<string> NetworkInterfaces, string Ipv4Address, bool ImdsCompat);

internal sealed record PmemConfig(string Id, string PathOnHost, bool RootDevice, bool ReadOnly, JsonNode? RateLimiter);

internal sealed record SerialConfig(string? SerialOutPath, JsonNode? RateLimiter);

internal sealed record EntropyConfig(JsonNode? RateLimiter);

internal sealed class VmResources
{
    public BootSourceConfig? BootSource { get; set; }
    public MachineConfig Machine { get; set; } = MachineConfig.Default;
    public List<DriveConfig> Drives { get; } = [];
    public List<NetConfig> Nets { get; } = [];
    public VsockConfig? Vsock { get; set; }
    public BalloonConfig? Balloon { get; set; }
    public EntropyConfig? Entropy { get; set; }
    public SerialConfig? Serial { get; set; }
    public MemoryHotplugConfig? MemoryHotplug { get; set; }
    public MmdsConfig? MmdsConfig { get; set; }
    public JsonNode? MmdsData { get; set; }

    /// <summary>Whether a PUT /mmds (or --metadata) filled the data store; PATCH /mmds needs it.</summary>
    public bool MmdsInitialized { get; set; }
    public JsonObject? CpuConfig { get; set; }
    public List<PmemConfig> Pmem { get; } = [];

    /// <summary>A PUT of an existing id replaces that device in place; a new id goes last.</summary>
    public static void ReplaceOrAdd<T>(List<T> devices, T device, Func<T, bool> sameId)
    {
        var i = devices.FindIndex(d => sameId(d));
        if (i >= 0)
        {
            devices[i] = device;
        }
        else
        {
            devices.Add(device);
        }
    }

    /// <summary>Adds or replaces a drive; a root device goes first, as Firecracker orders block devices.</summary>
    public void UpsertDrive(DriveConfig drive)
    {
        var i = Drives.FindIndex(d => d.DriveId == drive.DriveId);
        if (i >= 0)
        {
            Drives.RemoveAt(i);
        }

        if (drive.IsRootDevice)
        {
            Drives.Insert(0, drive);
        }
        else
        {
            Drives.Insert(i >= 0 ? Math.Min(i, Drives.Count) : Drives.Count, drive);
        }
    }

    /// <summary>GET /vm/config, key for key as Firecracker v1.16.1 prints it.</summary>
    public string ToJson()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Json.JsonText.Options))
        {
            w.WriteStartObject();
            w.WritePropertyName("balloon");
            if (Balloon is null)
            {
                w.WriteNullValue();
            }
            else
            {
                WriteBalloon(w, Balloon);
            }

            w.WriteStartArray("drives");
            foreach (var d in Drives)
            {
                w.WriteStartObject();
                w.WriteString("drive_id", d.DriveId);
                WriteNullable(w, "partuuid", d.Partuuid);
                w.WriteBoolean("is_root_device", d.IsRootDevice);
                w.WriteString("cache_type", d.CacheType);
                // A vhost-user drive has no read-only flag or I/O engine of its own (VhostUserBlockConfig into
                // BlockDeviceConfig leaves them None).
                if (d.Socket is null)
                {
                    w.WriteBoolean("is_read_only", d.IsReadOnly);
                }
                else
                {
                    w.WriteNull("is_read_only");
                }

                WriteNullable(w, "path_on_host", d.PathOnHost);
                WriteLimiter(w, "rate_limiter", d.RateLimiter);
                WriteNullable(w, "io_engine", d.Socket is null ? d.IoEngine : null);
                WriteNullable(w, "socket", d.Socket);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("boot-source");
            w.WriteString("kernel_image_path", BootSource?.KernelImagePath ?? "");
            WriteNullable(w, "initrd_path", BootSource?.InitrdPath);
            WriteNullable(w, "boot_args", BootSource?.BootArgs);
            w.WriteEndObject();
            // resources.rs: VmmConfig's cpu-config is the path of a --config-file's template, which VmResources
            // does not keep; a template put through the API is not reported either (07-preboot-devices).
            w.WriteNull("cpu-config");

            // Firecracker never reports logger and metrics here, even once configured.
            w.WriteNull("logger");
            w.WritePropertyName("machine-config");
            WriteMachine(w, Machine);
            w.WriteNull("metrics");
            w.WritePropertyName("mmds-config");
            if (MmdsConfig is null)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStartObject();
                w.WriteString("version", MmdsConfig.Version);
                w.WriteStartArray("network_interfaces");
                foreach (var n in MmdsConfig.NetworkInterfaces)
                {
                    w.WriteStringValue(n);
                }

                w.WriteEndArray();
                w.WriteString("ipv4_address", MmdsConfig.Ipv4Address);
                w.WriteBoolean("imds_compat", MmdsConfig.ImdsCompat);
                w.WriteEndObject();
            }

            w.WriteStartArray("network-interfaces");
            foreach (var n in Nets)
            {
                w.WriteStartObject();
                w.WriteString("iface_id", n.IfaceId);
                w.WriteString("host_dev_name", n.HostDevName);
                WriteNullable(w, "guest_mac", n.GuestMac);
                // v1.16's NetworkInterfaceConfig declares mtu after guest_mac and prints null when unset.
                if (n.Mtu is { } mtu)
                {
                    w.WriteNumber("mtu", mtu);
                }
                else
                {
                    w.WriteNull("mtu");
                }

                WriteLimiter(w, "rx_rate_limiter", n.RxRateLimiter);
                WriteLimiter(w, "tx_rate_limiter", n.TxRateLimiter);

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WritePropertyName("vsock");
            if (Vsock is null)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStartObject();
                // The deprecated vsock_id is accepted but not kept (07-preboot-devices).
                w.WriteNumber("guest_cid", Vsock.GuestCid);
                w.WriteString("uds_path", Vsock.UdsPath);
                w.WriteEndObject();
            }

            w.WritePropertyName("entropy");
            if (Entropy is null)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStartObject();
                WriteLimiter(w, "rate_limiter", Entropy.RateLimiter);
                w.WriteEndObject();
            }

            w.WriteStartArray("pmem");
            foreach (var p in Pmem)
            {
                w.WriteStartObject();
                w.WriteString("id", p.Id);
                w.WriteString("path_on_host", p.PathOnHost);
                w.WriteBoolean("root_device", p.RootDevice);
                w.WriteBoolean("read_only", p.ReadOnly);
                WriteLimiter(w, "rate_limiter", p.RateLimiter);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WritePropertyName("memory-hotplug");
            if (MemoryHotplug is null)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStartObject();
                w.WriteNumber("total_size_mib", MemoryHotplug.TotalSizeMib);
                w.WriteNumber("block_size_mib", MemoryHotplug.BlockSizeMib);
                w.WriteNumber("slot_size_mib", MemoryHotplug.SlotSizeMib);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static void WriteMachine(Utf8JsonWriter w, MachineConfig m)
    {
        w.WriteStartObject();
        w.WriteNumber("vcpu_count", m.VcpuCount);
        w.WriteNumber("mem_size_mib", m.MemSizeMib);
        w.WriteBoolean("smt", m.Smt);
        if (m.CpuTemplate is not null and not MachineConfig.CustomTemplate)
        {
            w.WriteString("cpu_template", m.CpuTemplate);
        }

        w.WriteBoolean("track_dirty_pages", m.TrackDirtyPages);
        w.WriteString("huge_pages", m.HugePages);
        w.WriteEndObject();
    }

    public static void WriteBalloon(Utf8JsonWriter w, BalloonConfig b)
    {
        w.WriteStartObject();
        w.WriteNumber("amount_mib", b.AmountMib);
        w.WriteBoolean("deflate_on_oom", b.DeflateOnOom);
        w.WriteNumber("stats_polling_interval_s", b.StatsPollingIntervalS);
        w.WriteBoolean("free_page_hinting", b.FreePageHinting);
        w.WriteBoolean("free_page_reporting", b.FreePageReporting);
        w.WriteEndObject();
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }

    // A limiter prints as {"bandwidth": bucket|null, "ops": bucket|null}, a bucket with all three fields (07-preboot-devices).
    private static void WriteLimiter(Utf8JsonWriter w, string name, JsonNode? limiter)
    {
        if (limiter is not JsonObject o)
        {
            w.WriteNull(name);
            return;
        }

        w.WriteStartObject(name);
        foreach (var bucketName in new[] { "bandwidth", "ops" })
        {
            if (o[bucketName] is JsonObject bucket)
            {
                w.WriteStartObject(bucketName);
                w.WriteNumber("size", bucket["size"]!.GetValue<ulong>());
                if (bucket["one_time_burst"] is { } burst)
                {
                    w.WriteNumber("one_time_burst", burst.GetValue<ulong>());
                }
                else
                {
                    w.WriteNull("one_time_burst");
                }

                w.WriteNumber("refill_time", bucket["refill_time"]!.GetValue<ulong>());
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull(bucketName);
            }
        }

        w.WriteEndObject();
    }
}
