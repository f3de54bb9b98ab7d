using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>/hotplug/memory (virtio-mem): configured before boot, resized after; the guest plugs at once.</summary>
internal static class MemoryHotplug
{
    public static ApiResponse Get(ApiCall call)
    {
        var vmm = call.Vmm;
        vmm.RequirePostBoot();
        var c = vmm.Resources.MemoryHotplug ?? throw new VmmActionException("Internal VMM error: " + Faults.DeviceNotFound);
        return ApiResponse.Ok(VmmCore.Json(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("total_size_mib", c.TotalSizeMib);
            w.WriteNumber("slot_size_mib", c.SlotSizeMib);
            w.WriteNumber("block_size_mib", c.BlockSizeMib);
            w.WriteNumber("plugged_size_mib", vmm.HotplugRequestedMib);
            w.WriteNumber("requested_size_mib", vmm.HotplugRequestedMib);
            w.WriteEndObject();
        }));
    }

    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.MemoryHotplug);
        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        var c = new MemoryHotplugConfig(o.U64("total_size_mib"), o.U64("block_size_mib", 2), o.U64("slot_size_mib", 128));
        // vmm_config/memory_hotplug.rs MemoryHotplugConfig::validate, in its order (minimum block 2 MiB, slot 128 MiB).
        const string prefix = "Memory hotplug config error: ";
        if (c.BlockSizeMib < 2)
        {
            throw new VmmActionException(prefix + "Block size must not be lower than 2 MiB");
        }

        if ((c.BlockSizeMib & (c.BlockSizeMib - 1)) != 0)
        {
            throw new VmmActionException(prefix + "Block size must be a power of 2");
        }

        if (c.SlotSizeMib < 128)
        {
            throw new VmmActionException(prefix + "Slot size must not be lower than 128 MiB");
        }

        if (c.SlotSizeMib % c.BlockSizeMib != 0)
        {
            throw new VmmActionException(prefix + $"Slot size must be a multiple of block size ({c.BlockSizeMib} MiB)");
        }

        if (c.TotalSizeMib < c.SlotSizeMib)
        {
            throw new VmmActionException(prefix + $"Total size must not be lower than slot size ({c.SlotSizeMib} MiB)");
        }

        if (c.TotalSizeMib % c.SlotSizeMib != 0)
        {
            throw new VmmActionException(prefix + $"Total size must be a multiple of slot size ({c.SlotSizeMib} MiB)");
        }

        vmm.Resources.MemoryHotplug = c;
        vmm.BootPath = true;
    }

    public static ApiResponse Patch(ApiCall call)
    {
        var body = call.Parse(Schemas.MemoryHotplugUpdate);
        var vmm = call.Vmm;
        vmm.RequirePostBoot();
        var c = vmm.Resources.MemoryHotplug ?? throw new VmmActionException("Memory hotplug update error: " + Faults.DeviceNotFound);
        var requested = body.U64("requested_size_mib");
        // devices/virtio/mem/device.rs update_requested_size: VirtioMemError::InvalidSize (in bytes) inside
        // VmmError::VirtioMem, whose text is "Failed to create memory hotplug device". The pretend guest's virtio-mem
        // driver is active from boot, so DeviceNotActive does not arise.
        if (requested > c.TotalSizeMib || requested % c.BlockSizeMib != 0)
        {
            throw new VmmActionException($"Memory hotplug update error: Failed to create memory hotplug device: Size {requested << 20} is invalid: it must be a multiple of block size and less than the total size");
        }

        vmm.HotplugRequestedMib = requested;
        return ApiResponse.NoContent;
    }
}
