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
        // vmm_config/pmem.rs PmemBuilder::build: a block root device first, then a second pmem root (replacing a
        // device that already was the root is fine). v1.16.1 prefixes these "Pmem config error" and does not open
        // the backing file at PUT: a missing file is accepted (07-preboot-devices).
        const string prefix = "Pmem config error: ";
        if (p.RootDevice && vmm.Resources.Drives.Any(d => d.IsRootDevice))
        {
            throw new VmmActionException(prefix + "Attempt to add pmem as a root device while the root device defined as a block device");
        }

        var existing = vmm.Resources.Pmem.Find(x => x.Id == p.Id);
        if (p.RootDevice && existing?.RootDevice != true && vmm.Resources.Pmem.Any(x => x.RootDevice))
        {
            throw new VmmActionException(prefix + "A root pmem device already exist");
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
            // vmm_config/pmem.rs PmemConfigError::DeviceUpdate ("Unable to patch the pmem device: {0} Please verify the
            // request arguments.") around the device manager's lookup failure (VmmError::FindDeviceError); the
            // "Pmem config error" prefix is v1.16.1's, as 07-preboot-devices shows for its other variants.
            throw new VmmActionException($"Pmem config error: Unable to patch the pmem device: {Faults.DeviceNotFound} Please verify the request arguments.");
        }

        vmm.Resources.Pmem[i] = vmm.Resources.Pmem[i] with { RateLimiter = body.Clone("rate_limiter") };
        return ApiResponse.NoContent;
    }
}
