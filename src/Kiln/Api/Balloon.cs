using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Api;

/// <summary>Balloon device: body of <c>PUT /balloon</c>, answer of <c>GET /balloon</c> (spec definition <c>Balloon</c>).</summary>
public sealed record Balloon
{
    /// <summary>Target balloon size in MiB.</summary>
    public required int AmountMib { get; init; }

    /// <summary>Whether the balloon deflates when the guest is under memory pressure.</summary>
    public required bool DeflateOnOom { get; init; }

    /// <summary>Seconds between statistics refreshes; non-zero turns statistics on (default 0).</summary>
    public int? StatsPollingIntervalS { get; init; }

    /// <summary>Whether free page hinting is on.</summary>
    public bool? FreePageHinting { get; init; }

    /// <summary>Whether free page reporting is on.</summary>
    public bool? FreePageReporting { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Body of <c>PATCH /balloon</c> after boot: a new target size (spec definition <c>BalloonUpdate</c>).</summary>
public sealed record BalloonUpdate
{
    /// <summary>Target balloon size in MiB.</summary>
    public required int AmountMib { get; init; }
}

/// <summary>Answer of <c>GET /balloon/statistics</c> (spec definition <c>BalloonStats</c>).</summary>
public sealed record BalloonStats
{
    /// <summary>Target number of pages the device aims to hold.</summary>
    public required long TargetPages { get; init; }

    /// <summary>Number of pages the device holds.</summary>
    public required long ActualPages { get; init; }

    /// <summary>Target amount of memory in MiB.</summary>
    public required long TargetMib { get; init; }

    /// <summary>Amount of memory the device holds in MiB.</summary>
    public required long ActualMib { get; init; }

    /// <summary>Memory swapped in, in bytes.</summary>
    public long? SwapIn { get; init; }

    /// <summary>Memory swapped out, in bytes.</summary>
    public long? SwapOut { get; init; }

    /// <summary>Major page faults.</summary>
    public long? MajorFaults { get; init; }

    /// <summary>Minor page faults.</summary>
    public long? MinorFaults { get; init; }

    /// <summary>Memory not used for any purpose, in bytes.</summary>
    public long? FreeMemory { get; init; }

    /// <summary>Total memory available, in bytes.</summary>
    public long? TotalMemory { get; init; }

    /// <summary>Estimate of memory available for new applications without swapping, in bytes.</summary>
    public long? AvailableMemory { get; init; }

    /// <summary>Memory quickly reclaimable without IO (mostly page cache), in bytes.</summary>
    public long? DiskCaches { get; init; }

    /// <summary>Successful hugetlb page allocations in the guest.</summary>
    public long? HugetlbAllocations { get; init; }

    /// <summary>Failed hugetlb page allocations in the guest.</summary>
    public long? HugetlbFailures { get; init; }

    /// <summary>OOM killer invocations.</summary>
    public long? OomKill { get; init; }

    /// <summary>Allocations that entered the slow path.</summary>
    public long? AllocStall { get; init; }

    /// <summary>Memory scanned asynchronously.</summary>
    public long? AsyncScan { get; init; }

    /// <summary>Memory scanned directly.</summary>
    public long? DirectScan { get; init; }

    /// <summary>Memory reclaimed asynchronously.</summary>
    public long? AsyncReclaim { get; init; }

    /// <summary>Memory reclaimed directly.</summary>
    public long? DirectReclaim { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Body of <c>PATCH /balloon/statistics</c>: a new polling interval (spec definition <c>BalloonStatsUpdate</c>).</summary>
public sealed record BalloonStatsUpdate
{
    /// <summary>Seconds between statistics refreshes (statistics cannot be turned on or off after boot).</summary>
    public required int StatsPollingIntervalS { get; init; }
}

/// <summary>Body of <c>PATCH /balloon/hinting/start</c> (spec definition <c>BalloonStartCmd</c>).</summary>
public sealed record BalloonStartCmd
{
    /// <summary>Whether Firecracker acknowledges automatically when the guest reports it is done.</summary>
    public bool? AcknowledgeOnStop { get; init; }
}

/// <summary>Answer of <c>GET /balloon/hinting/status</c> (spec definition <c>BalloonHintingStatus</c>).</summary>
public sealed record BalloonHintingStatus
{
    /// <summary>The last command the host issued.</summary>
    public required int HostCmd { get; init; }

    /// <summary>The last command the guest provided.</summary>
    public int? GuestCmd { get; init; }

    /// <summary>Fields a newer Firecracker sends that this version of Kiln does not know; kept so nothing is lost.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
