using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT /entropy and PUT /serial: pre-boot devices with nothing to check but their shape.</summary>
internal static class Entropy
{
    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.Entropy);
        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        vmm.Resources.Entropy = new EntropyConfig(o.Clone("rate_limiter"));
        vmm.BootPath = true;
    }

    public static ApiResponse PutSerial(ApiCall call)
    {
        var body = call.Parse(Schemas.Serial);
        call.Vmm.RequirePreBoot();
        ApplySerial(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void ApplySerial(VmmCore vmm, JsonObject o)
    {
        // rpc_interface.rs ConfigureSerial only records the path: no file is opened and boot_path is left alone.
        vmm.Resources.Serial = new SerialConfig(o.OptStr("serial_out_path"), o.Clone("rate_limiter"));
    }
}
