using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>GET/PUT/PATCH /machine-config.</summary>
internal static class MachineConfiguration
{
    public static ApiResponse Get(ApiCall call)
    {
        return ApiResponse.Ok(VmmCore.Json(w => VmResources.WriteMachine(w, call.Vmm.Resources.Machine)));
    }

    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.MachineConfig);
        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body, replace: true);
        return ApiResponse.NoContent;
    }

    public static ApiResponse Patch(ApiCall call)
    {
        var body = call.Parse(Schemas.MachineConfigUpdate);
        if (body.All(kv => kv.Value is null))
        {
            throw ApiCall.Generic("Empty PATCH request.");
        }

        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body, replace: false);
        return ApiResponse.NoContent;
    }

    /// <summary>A PUT starts from the defaults; a PATCH from the current values.</summary>
    public static void Apply(VmmCore vmm, JsonObject o, bool replace)
    {
        var cur = replace ? MachineConfig.Default : vmm.Resources.Machine;
        var next = new MachineConfig(
            (int)o.U64("vcpu_count", (ulong)cur.VcpuCount),
            o.U64("mem_size_mib", cur.MemSizeMib),
            o.Bool("smt", cur.Smt),
            o.OptStr("cpu_template") ?? cur.CpuTemplate,
            o.Bool("track_dirty_pages", cur.TrackDirtyPages),
            o.OptStr("huge_pages") ?? cur.HugePages);
        if (next.VcpuCount is < 1 or > 32 || (next.Smt && next.VcpuCount > 1 && next.VcpuCount % 2 != 0))
        {
            throw new VmmActionException("Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.");
        }

        if (next.MemSizeMib == 0 || (next.HugePages == "2M" && next.MemSizeMib % 2 != 0))
        {
            throw new VmmActionException("Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.");
        }

        vmm.Resources.Machine = next;
        vmm.BootPath = true;
    }
}
