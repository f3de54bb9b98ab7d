using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT/PATCH/DELETE /drives/{id}. After boot, PUT and DELETE are PCI hot-plug; PATCH swaps the backing file.</summary>
internal static class Drives
{
    private const string PatchSuffix = " Please verify the request arguments.";

    public static ApiResponse Put(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var body = call.Parse(Schemas.Drive);
        ApiCall.CheckPathId(id, body.Str("drive_id"));
        var vmm = call.Vmm;
        if (vmm.Started)
        {
            RequirePci(vmm);
        }

        Apply(vmm, body);
        if (vmm.Started)
        {
            var index = vmm.Resources.Drives.FindIndex(d => d.DriveId == id);
            var drive = vmm.Resources.Drives[index];
            vmm.DriveBytes[id] = drive.PathOnHost is null ? 0 : Guest.FileLength(drive.PathOnHost);
            vmm.Guest!.DriveResized(index, 0, vmm.DriveBytes[id]);
        }

        return ApiResponse.NoContent;
    }

    public static void RequirePci(VmmCore vmm)
    {
        if (!vmm.Options.EnablePci)
        {
            throw new VmmActionException("PCI is not enabled");
        }
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        var drive = new DriveConfig(
            o.Str("drive_id"), o.OptStr("partuuid"), o.Bool("is_root_device"), o.OptStr("cache_type") ?? "Unsafe",
            o.Bool("is_read_only"), o.OptStr("path_on_host"), RateLimiters.Built(o["rate_limiter"]), o.OptStr("io_engine") ?? "Sync",
            o.OptStr("socket"));
        if (drive.IsRootDevice && vmm.Resources.Drives.Any(d => d.IsRootDevice && d.DriveId != drive.DriveId))
        {
            throw new VmmActionException("Drive config error: A root block device already exists!");
        }

        // devices/virtio/block/device.rs Block::new: a virtio drive has path_on_host and no socket; a vhost-user drive
        // has socket and none of is_read_only, path_on_host, rate_limiter, io_engine. Anything else is neither
        // (BlockError::InvalidBlockConfig, devices/virtio/block/mod.rs, inside DriveError::CreateBlockDevice).
        var virtio = o["path_on_host"] is not null && o["socket"] is null;
        var vhostUser = o["socket"] is not null && o["is_read_only"] is null && o["path_on_host"] is null
            && o["rate_limiter"] is null && o["io_engine"] is null;
        if (!virtio && !vhostUser)
        {
            throw new VmmActionException("Drive config error: Unable to create the virtio block device: Invalid block config.");
        }

        // A vhost-user drive (socket) is not opened by the stand-in: there is no backend to talk to.
        if (drive.Socket is null)
        {
            var path = drive.PathOnHost ?? "";
            if (BootSource.OpenError(path, drive.IsReadOnly) is { } error)
            {
                throw new VmmActionException($"Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: {error} {path}");
            }
        }

        vmm.Resources.UpsertDrive(drive);
        vmm.BootPath = true;
    }

    public static ApiResponse Patch(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var body = call.Parse(Schemas.DriveUpdate);
        ApiCall.CheckPathId(id, body.Str("drive_id"));
        var vmm = call.Vmm;
        vmm.RequirePostBoot();
        var index = vmm.Resources.Drives.FindIndex(d => d.DriveId == id);
        if (index < 0)
        {
            throw new VmmActionException($"Drive config error: Unable to patch the block device: {Faults.DeviceNotFound}{PatchSuffix}");
        }

        var drive = vmm.Resources.Drives[index];
        // rpc_interface.rs update_block_device: a PATCH naming neither path_on_host nor rate_limiter is a vhost-user
        // config update; path and rate limiter updates are virtio-only. The wrong backend is
        // BlockError::InvalidBlockBackend (devices/virtio/block/mod.rs) inside VmmError::Block.
        const string wrongBackend = "Drive config error: Unable to patch the block device: Block: Running method expected different backend." + PatchSuffix;
        var vhostUser = drive.Socket is not null;
        if (body["path_on_host"] is null && body["rate_limiter"] is null && !vhostUser)
        {
            throw new VmmActionException(wrongBackend);
        }

        if ((body["path_on_host"] is not null || body["rate_limiter"] is not null) && vhostUser)
        {
            throw new VmmActionException(wrongBackend);
        }

        if (body.OptStr("path_on_host") is { } path)
        {
            if (BootSource.OpenError(path, drive.IsReadOnly) is { } error)
            {
                throw new VmmActionException($"Drive config error: Unable to patch the block device: Block: Virtio backend error: Error manipulating the backing file: {error} {path}{PatchSuffix}");
            }

            drive = drive with { PathOnHost = path };
            var oldBytes = vmm.DriveBytes.GetValueOrDefault(id);
            var newBytes = Guest.FileLength(path);
            vmm.DriveBytes[id] = newBytes;
            vmm.Guest!.DriveResized(index, oldBytes, newBytes);
        }

        if (body["rate_limiter"] is JsonObject limiter)
        {
            drive = drive with { RateLimiter = RateLimiters.Updated(drive.RateLimiter, limiter) };
        }

        vmm.Resources.Drives[index] = drive;
        return ApiResponse.NoContent;
    }

    public static ApiResponse Delete(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var vmm = call.Vmm;
        vmm.RequirePostBoot();
        RequirePci(vmm);
        var index = vmm.Resources.Drives.FindIndex(d => d.DriveId == id);
        if (index < 0)
        {
            throw new VmmActionException($"Drive config error: Unable to patch the block device: {Faults.DeviceNotFound}{PatchSuffix}");
        }

        vmm.Resources.Drives.RemoveAt(index);
        return ApiResponse.NoContent;
    }
}
