using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Caching strategy of a block device.</summary>
public enum DriveCacheType
{
    /// <summary>Flushes are ignored (Firecracker's default).</summary>
    Unsafe,

    /// <summary>Flushes reach the host's backing file.</summary>
    Writeback,
}

/// <summary>IO engine of a virtio-block device.</summary>
public enum DriveIoEngine
{
    /// <summary>Blocking IO (Firecracker's default).</summary>
    Sync,

    /// <summary>io_uring; host kernels newer than 5.10.51.</summary>
    Async,
}

/// <summary>Body of <c>PUT /drives/{drive_id}</c> and an entry of <c>GET /vm/config</c> (spec definition <c>Drive</c>).</summary>
public sealed record Drive
{
    /// <summary>The drive's id: alphanumeric characters and underscores; also the path segment.</summary>
    public required string DriveId { get; init; }

    /// <summary>Unique id of the boot partition; only used when <see cref="IsRootDevice"/> is true.</summary>
    public string? Partuuid { get; init; }

    /// <summary>Whether the guest boots from this drive (at most one root device).</summary>
    public required bool IsRootDevice { get; init; }

    /// <summary>Caching strategy; Firecracker defaults to <see cref="DriveCacheType.Unsafe"/>.</summary>
    public DriveCacheType? CacheType { get; init; }

    /// <summary>Whether the guest sees the drive read-only (virtio-block only).</summary>
    public bool? IsReadOnly { get; init; }

    /// <summary>Host path of the backing file (virtio-block only); it must exist when the drive is PUT.</summary>
    public string? PathOnHost { get; init; }

    /// <summary>Rate limiter of the device (virtio-block only).</summary>
    public RateLimiter? RateLimiter { get; init; }

    /// <summary>IO engine; Firecracker defaults to <see cref="DriveIoEngine.Sync"/> (virtio-block only).</summary>
    public DriveIoEngine? IoEngine { get; init; }

    /// <summary>Path of the vhost-user-block backend's socket (vhost-user-block only).</summary>
    public string? Socket { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Body of <c>PATCH /drives/{drive_id}</c> after boot: swap the backing file or the rate limiter (spec definition <c>PartialDrive</c>).</summary>
public sealed record PartialDrive
{
    /// <summary>The drive's id; also the path segment.</summary>
    public required string DriveId { get; init; }

    /// <summary>New host path of the backing file; the guest is told the new size.</summary>
    public string? PathOnHost { get; init; }

    /// <summary>New rate limiter.</summary>
    public RateLimiter? RateLimiter { get; init; }
}
