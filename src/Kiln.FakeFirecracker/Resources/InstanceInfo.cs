using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>GET / and GET /version.</summary>
internal static class InstanceInfo
{
    public static ApiResponse Get(ApiCall call)
    {
        return ApiResponse.Ok(VmmCore.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("id", call.Vmm.Options.InstanceId);
            w.WriteString("state", call.Vmm.StateName);
            w.WriteString("vmm_version", VmmCore.Version);
            w.WriteString("app_name", "Firecracker");
            w.WriteEndObject();
        }));
    }

    public static ApiResponse GetVersion(ApiCall call)
    {
        return ApiResponse.Ok(VmmCore.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("firecracker_version", VmmCore.Version);
            w.WriteEndObject();
        }));
    }

    /// <summary>GET /vm/config.</summary>
    public static ApiResponse GetVmConfig(ApiCall call)
    {
        // rpc_interface.rs: a warn! in PrebootApiController only; transcript 03 shows no such line after a load.
        if (!call.Vmm.Started)
        {
            call.Vmm.Log.Warn("main", "If the VM was restored from snapshot, boot-source, machine-config.smt, and machine-config.cpu_template will all be empty.", LogOrigin.Rpc);
        }

        return ApiResponse.Ok(call.Vmm.Resources.ToJson());
    }
}
