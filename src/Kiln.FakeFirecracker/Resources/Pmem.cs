using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT/PATCH /pmem/{id} (virtio-pmem).</summary>
internal static class Pmem
{
    public static ApiResponse Put(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var body = call.Parse(Schemas.Pmem);
        ApiCall.CheckPathId(id, body.Str("id"));
        if (call.Vmm.Started)
        {
            Drives.RequirePci(call.Vmm);
        }

        Apply(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        var p = new PmemConfig(o.Str("id"), o.Str("path_on_host"), o.Bool("root_device"), o.Bool("read_only"), o.Clone("rate_limiter"));
        // ASSUMED wordings.
        if (p.RootDevice && (vmm.Resources.Pmem.Any(x => x.RootDevice && x.Id != p.Id) || vmm.Resources.Drives.Any(d => d.IsRootDevice)))
        {
            throw new VmmActionException("Pmem device error: Attempt to add pmem as a root device while the root device defined as a block device");
        }

        if (BootSource.OpenError(p.PathOnHost, p.ReadOnly) is { } error)
        {
            throw new VmmActionException($"Pmem device error: Error accessing backing file: {error}");
        }

        VmResources.ReplaceOrAdd(vmm.Resources.Pmem, p, x => x.Id == p.Id);

        vmm.BootPath = true;
    }

    public static ApiResponse Patch(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var body = call.Parse(Schemas.PmemUpdate);
        ApiCall.CheckPathId(id, body.Str("id"));
        var vmm = call.Vmm;
        vmm.RequirePostBoot();
        var i = vmm.Resources.Pmem.FindIndex(x => x.Id == id);
        if (i < 0)
        {
            throw new VmmActionException("Pmem device error: " + Faults.DeviceNotFound);
        }

        vmm.Resources.Pmem[i] = vmm.Resources.Pmem[i] with { RateLimiter = body.Clone("rate_limiter") };
        return ApiResponse.NoContent;
    }
}
