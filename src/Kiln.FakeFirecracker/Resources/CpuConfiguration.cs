using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT /cpu-config: kept as given (modifier arrays are not interpreted; there is no CPUID to change).</summary>
internal static class CpuConfiguration
{
    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.CpuConfig);
        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        vmm.Resources.CpuConfig = new JsonObject
        {
            ["kvm_capabilities"] = o.Clone("kvm_capabilities") ?? new JsonArray(),
            ["cpuid_modifiers"] = o.Clone("cpuid_modifiers") ?? new JsonArray(),
            ["msr_modifiers"] = o.Clone("msr_modifiers") ?? new JsonArray(),
        };
        // machine_config.rs set_custom_cpu_template: a custom template replaces a static one, which then no longer
        // shows in GET /machine-config. It is not a boot-specific resource (rpc_interface.rs leaves boot_path alone).
        vmm.Resources.Machine = vmm.Resources.Machine with { CpuTemplate = MachineConfig.CustomTemplate };
    }
}
