// Every operation of Firecracker's API (the spec's operationIds plus the DELETEs the spec omits) as data, so the
// client, its errors and its tests share one table.
using System.Text;

namespace Kiln.Api;

/// <summary>One API operation: spec operationId, HTTP method and path (a prefix when an id follows).</summary>
internal sealed class ApiOperation
{
    public ApiOperation(string operationId, string method, string path, bool hasId = false, bool isSlow = false)
    {
        OperationId = operationId;
        Method = method;
        Path = path;
        HasId = hasId;
        IsSlow = isSlow;
        RequestLinePrefix = Encoding.ASCII.GetBytes($"{method} {path}");
        SendsContentLength = method is not ("GET" or "DELETE");
    }

    public string OperationId { get; }

    public string Method { get; }

    /// <summary>The path, or for operations on one device the path up to and including the slash before its id.</summary>
    public string Path { get; }

    public bool HasId { get; }

    /// <summary>Work that scales with guest memory (snapshots), which gets the longer deadline.</summary>
    public bool IsSlow { get; }

    /// <summary><c>METHOD /path</c> as ASCII, ready to copy into a request.</summary>
    public byte[] RequestLinePrefix { get; }

    /// <summary>PUT and PATCH carry a Content-Length even when empty; GET and DELETE carry none.</summary>
    public bool SendsContentLength { get; }

    /// <summary><c>operationId METHOD /path</c> as exceptions and logs name it.</summary>
    public string Describe(string? id) => id is null ? $"{OperationId} {Method} {Path}" : $"{OperationId} {Method} {Path}{id}";
}

/// <summary>The operation table, in the spec's order.</summary>
internal static class ApiOperations
{
    public static readonly ApiOperation DescribeInstance = new("describeInstance", "GET", "/");
    public static readonly ApiOperation CreateSyncAction = new("createSyncAction", "PUT", "/actions");
    public static readonly ApiOperation DescribeBalloonConfig = new("describeBalloonConfig", "GET", "/balloon");
    public static readonly ApiOperation PutBalloon = new("putBalloon", "PUT", "/balloon");
    public static readonly ApiOperation PatchBalloon = new("patchBalloon", "PATCH", "/balloon");
    public static readonly ApiOperation DescribeBalloonStats = new("describeBalloonStats", "GET", "/balloon/statistics");
    public static readonly ApiOperation PatchBalloonStatsInterval = new("patchBalloonStatsInterval", "PATCH", "/balloon/statistics");
    public static readonly ApiOperation StartBalloonHinting = new("startBalloonHinting", "PATCH", "/balloon/hinting/start");
    public static readonly ApiOperation DescribeBalloonHinting = new("describeBalloonHinting", "GET", "/balloon/hinting/status");
    public static readonly ApiOperation StopBalloonHinting = new("stopBalloonHinting", "PATCH", "/balloon/hinting/stop");
    public static readonly ApiOperation PutGuestBootSource = new("putGuestBootSource", "PUT", "/boot-source");
    public static readonly ApiOperation PutCpuConfiguration = new("putCpuConfiguration", "PUT", "/cpu-config");
    public static readonly ApiOperation PutGuestDriveByID = new("putGuestDriveByID", "PUT", "/drives/", hasId: true);
    public static readonly ApiOperation PatchGuestDriveByID = new("patchGuestDriveByID", "PATCH", "/drives/", hasId: true);
    public static readonly ApiOperation DeleteGuestDriveByID = new("deleteGuestDriveByID", "DELETE", "/drives/", hasId: true);
    public static readonly ApiOperation PutGuestPmemByID = new("putGuestPmemByID", "PUT", "/pmem/", hasId: true);
    public static readonly ApiOperation PatchGuestPmemByID = new("patchGuestPmemByID", "PATCH", "/pmem/", hasId: true);
    public static readonly ApiOperation DeleteGuestPmemByID = new("deleteGuestPmemByID", "DELETE", "/pmem/", hasId: true);
    public static readonly ApiOperation PutLogger = new("putLogger", "PUT", "/logger");
    public static readonly ApiOperation GetMachineConfiguration = new("getMachineConfiguration", "GET", "/machine-config");
    public static readonly ApiOperation PutMachineConfiguration = new("putMachineConfiguration", "PUT", "/machine-config");
    public static readonly ApiOperation PatchMachineConfiguration = new("patchMachineConfiguration", "PATCH", "/machine-config");
    public static readonly ApiOperation PutMetrics = new("putMetrics", "PUT", "/metrics");
    public static readonly ApiOperation PutMmds = new("putMmds", "PUT", "/mmds");
    public static readonly ApiOperation PatchMmds = new("patchMmds", "PATCH", "/mmds");
    public static readonly ApiOperation GetMmds = new("getMmds", "GET", "/mmds");
    public static readonly ApiOperation PutMmdsConfig = new("putMmdsConfig", "PUT", "/mmds/config");
    public static readonly ApiOperation PutEntropyDevice = new("putEntropyDevice", "PUT", "/entropy");
    public static readonly ApiOperation PutSerialDevice = new("putSerialDevice", "PUT", "/serial");
    public static readonly ApiOperation PutMemoryHotplug = new("putMemoryHotplug", "PUT", "/hotplug/memory");
    public static readonly ApiOperation PatchMemoryHotplug = new("patchMemoryHotplug", "PATCH", "/hotplug/memory");
    public static readonly ApiOperation GetMemoryHotplug = new("getMemoryHotplug", "GET", "/hotplug/memory");
    public static readonly ApiOperation PutGuestNetworkInterfaceByID = new("putGuestNetworkInterfaceByID", "PUT", "/network-interfaces/", hasId: true);
    public static readonly ApiOperation PatchGuestNetworkInterfaceByID = new("patchGuestNetworkInterfaceByID", "PATCH", "/network-interfaces/", hasId: true);
    public static readonly ApiOperation DeleteGuestNetworkInterfaceByID = new("deleteGuestNetworkInterfaceByID", "DELETE", "/network-interfaces/", hasId: true);
    public static readonly ApiOperation CreateSnapshot = new("createSnapshot", "PUT", "/snapshot/create", isSlow: true);
    public static readonly ApiOperation LoadSnapshot = new("loadSnapshot", "PUT", "/snapshot/load", isSlow: true);
    public static readonly ApiOperation GetFirecrackerVersion = new("getFirecrackerVersion", "GET", "/version");
    public static readonly ApiOperation PatchVm = new("patchVm", "PATCH", "/vm");
    public static readonly ApiOperation GetExportVmConfig = new("getExportVmConfig", "GET", "/vm/config");
    public static readonly ApiOperation PutGuestVsock = new("putGuestVsock", "PUT", "/vsock");
}
