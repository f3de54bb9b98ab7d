using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT /vsock: binds uds_path at once (an existing file is EADDRINUSE).</summary>
internal static class Vsock
{
    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.Vsock);
        if (body["vsock_id"] is not null)
        {
            // request/vsock.rs parse_put_vsock.
            call.Deprecation = "PUT /vsock: vsock_id field is deprecated.";
        }

        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        vmm.SetVsock(new VsockConfig(o.OptStr("vsock_id"), (uint)o.U64("guest_cid"), o.Str("uds_path")));
        vmm.BootPath = true;
    }
}
