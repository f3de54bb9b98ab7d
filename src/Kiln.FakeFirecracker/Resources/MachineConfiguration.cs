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
        if (body["cpu_template"] is not null)
        {
            call.Deprecation = "PUT /machine-config: cpu_template field is deprecated.";
        }

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

        if (body["cpu_template"] is not null)
        {
            call.Deprecation = "PATCH /machine-config: cpu_template field is deprecated.";
        }

        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body, replace: false);
        return ApiResponse.NoContent;
    }

    /// <summary>machine_config.rs MachineConfig::update. A PUT is the update MachineConfigUpdate::from(MachineConfig)
    /// makes: every field set (smt, track_dirty_pages and huge_pages to their defaults when left out) except
    /// cpu_template, which a PUT without it leaves as it was; a PATCH changes only what it names.</summary>
    public static void Apply(VmmCore vmm, JsonObject o, bool replace)
    {
        var cur = vmm.Resources.Machine;
        var fallback = replace ? MachineConfig.Default with { CpuTemplate = cur.CpuTemplate } : cur;
        var template = o.OptStr("cpu_template") switch
        {
            null => cur.CpuTemplate,
            "None" => null,
            var t => t,
        };
        var next = new MachineConfig(
            (int)o.U64("vcpu_count", (ulong)fallback.VcpuCount),
            o.U64("mem_size_mib", fallback.MemSizeMib),
            o.Bool("smt", fallback.Smt),
            template,
            o.Bool("track_dirty_pages", fallback.TrackDirtyPages),
            o.OptStr("huge_pages") ?? fallback.HugePages);
        if (next.VcpuCount is < 1 or > 32 || (next.Smt && next.VcpuCount > 1 && next.VcpuCount % 2 != 0))
        {
            throw new VmmActionException("Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.");
        }

        if (next.MemSizeMib == 0 || (next.HugePages == "2M" && next.MemSizeMib % 2 != 0))
        {
            throw new VmmActionException("Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.");
        }

        // resources.rs update_machine_config: the memory may not shrink below the balloon's target.
        if (vmm.Resources.Balloon is { } balloon && next.MemSizeMib < balloon.AmountMib)
        {
            throw new VmmActionException("Machine config error: The memory size (MiB) is smaller than the previously set balloon device target size.");
        }

        vmm.Resources.Machine = next;
        vmm.BootPath = true;
    }
}
