// Request routing exactly as Firecracker's ParsedRequest::try_from matches (method, first path token, body presence).
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

internal static class Router
{
    public static RequestErrorException InvalidPathMethod(string method, string path) =>
        new($"Invalid request method and/or path: {method} {path}.",
            $"InvalidPathMethod({RustDebug.Str(path)}, {method[..1]}{method[1..].ToLowerInvariant()})");

    /// <summary>Splits like <c>trim_start_matches('/').split_terminator('/')</c>.</summary>
    public static string[] Tokens(string path)
    {
        var trimmed = path.TrimStart('/');
        if (trimmed.Length == 0)
        {
            return [];
        }

        var parts = trimmed.Split('/');
        return parts[^1].Length == 0 ? parts[..^1] : parts;
    }

    /// <summary>Picks the handler, or throws the RequestError Firecracker gives for the combination.</summary>
    public static Func<ApiCall, ApiResponse> Route(ApiRequest r, string[] tokens, out string? metric)
    {
        var first = tokens.Length > 0 ? tokens[0] : "";
        var second = tokens.Length > 1 ? tokens[1] : null;
        var hasBody = r.Body is not null;
        metric = null;
        switch (r.Method)
        {
            case "GET" when !hasBody:
                switch (first)
                {
                    case "":
                        return InstanceInfo.Get;
                    case "balloon":
                        return Balloon.Get;
                    case "version":
                        return InstanceInfo.GetVersion;
                    case "vm" when second == "config":
                        return InstanceInfo.GetVmConfig;
                    case "machine-config":
                        return MachineConfiguration.Get;
                    case "mmds":
                        return Mmds.Get;
                    case "hotplug" when second == "memory":
                        return MemoryHotplug.Get;
                }

                break;
            case "GET":
                throw ApiCall.Generic("GET request cannot have a body.");
            case "PUT" when hasBody:
                metric = "put_api_requests." + first switch
                {
                    "boot-source" => "boot_source",
                    "drives" => "drive",
                    "machine-config" => "machine_cfg",
                    "cpu-config" => "cpu_cfg",
                    "network-interfaces" => "network",
                    "hotplug" => "hotplug_memory",
                    _ => first,
                };
                switch (first)
                {
                    case "actions":
                        return Actions.Put;
                    case "balloon":
                        return Balloon.Put;
                    case "boot-source":
                        return BootSource.Put;
                    case "cpu-config":
                        return CpuConfiguration.Put;
                    case "drives":
                        return Drives.Put;
                    case "pmem":
                        return Pmem.Put;
                    case "logger":
                        return LoggerAndMetrics.PutLogger;
                    case "serial":
                        return Entropy.PutSerial;
                    case "machine-config":
                        return MachineConfiguration.Put;
                    case "metrics":
                        return LoggerAndMetrics.PutMetrics;
                    case "mmds":
                        return Mmds.Put;
                    case "network-interfaces":
                        return NetworkInterfaces.Put;
                    case "snapshot":
                        metric = null;
                        return Snapshot.Put;
                    case "vsock":
                        return Vsock.Put;
                    case "entropy":
                        metric = null;
                        return Entropy.Put;
                    case "hotplug" when second == "memory":
                        return MemoryHotplug.Put;
                }

                metric = null;
                break;
            case "PUT":
                throw ApiCall.Generic("Empty PUT request.");
            case "PATCH" when first == "balloon":
                return Balloon.Patch;
            case "PATCH" when hasBody:
                metric = "patch_api_requests." + first switch
                {
                    "drives" => "drive",
                    "machine-config" => "machine_cfg",
                    "network-interfaces" => "network",
                    "hotplug" => "hotplug_memory",
                    _ => first,
                };
                switch (first)
                {
                    case "drives":
                        return Drives.Patch;
                    case "machine-config":
                        return MachineConfiguration.Patch;
                    case "mmds":
                        return Mmds.Patch;
                    case "network-interfaces":
                        return NetworkInterfaces.Patch;
                    case "vm":
                        metric = null;
                        return Actions.PatchVm;
                    case "hotplug" when second == "memory":
                        return MemoryHotplug.Patch;
                    case "pmem":
                        return Pmem.Patch;
                }

                metric = null;
                break;
            case "PATCH":
                throw ApiCall.Generic("Empty PATCH request.");
            case "DELETE":
                switch (first)
                {
                    case "drives":
                        return Drives.Delete;
                    case "network-interfaces":
                        return NetworkInterfaces.Delete;
                }

                break;
        }

        throw InvalidPathMethod(r.Method, first);
    }
}
