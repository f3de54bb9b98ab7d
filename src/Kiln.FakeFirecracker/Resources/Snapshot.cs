using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT /snapshot/create and PUT /snapshot/load.</summary>
internal static class Snapshot
{
    public static ApiResponse Put(ApiCall call)
    {
        switch (call.Token(1))
        {
            case "create":
                {
                    var body = call.Parse(Schemas.SnapshotCreate);
                    var type = body.OptStr("snapshot_type") ?? "Full";
                    call.TimedAction = $"create {type.ToLowerInvariant()} snapshot";
                    call.Vmm.CreateSnapshot(type, body.Str("snapshot_path"), body.Str("mem_file_path"));
                    return ApiResponse.NoContent;
                }

            case "load":
                return Load(call);
            case null:
                throw ApiCall.Generic("Missing snapshot operation type.");
            default:
                throw Router.InvalidPathMethod("PUT", $"/snapshot/{call.Token(1)}");
        }
    }

    private static ApiResponse Load(ApiCall call)
    {
        var body = call.Parse(Schemas.SnapshotLoad);
        var memFile = body.OptStr("mem_file_path");
        var backend = body["mem_backend"]?.AsObject();
        if (memFile is not null && backend is not null)
        {
            const string tooMany = "too many fields: either `mem_backend` or `mem_file_path` exclusively is required";
            throw ApiCall.SerdeFault(tooMany, $"Error({RustDebug.Str(tooMany)}, line: 0, column: 0)");
        }

        if (memFile is null && backend is null)
        {
            const string missing = "missing field: either `mem_backend` or `mem_file_path` is required";
            throw ApiCall.SerdeFault(missing, $"Error({RustDebug.Str(missing)}, line: 0, column: 0)");
        }

        if (memFile is not null)
        {
            call.Deprecation = "PUT /snapshot/load: mem_file_path field is deprecated.";
        }

        call.TimedAction = "load snapshot";
        var overrides = body["network_overrides"]?.AsArray()
            .Select(n => (n!["iface_id"]!.GetValue<string>(), n["host_dev_name"]!.GetValue<string>())).ToList() ?? [];
        call.Vmm.LoadSnapshot(new VmmCore.LoadParams(
            body.Str("snapshot_path"),
            memFile ?? backend!.Str("backend_path"),
            backend?.Str("backend_type") ?? "File",
            body.Bool("resume_vm"),
            body.Bool("track_dirty_pages") || body.Bool("enable_diff_snapshots"),
            overrides,
            body["vsock_override"]?["uds_path"]?.GetValue<string>()));
        return ApiResponse.NoContent;
    }
}
