using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Interop;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT /boot-source: the kernel (and initrd) must open now, as Firecracker opens them at this call.</summary>
internal static class BootSource
{
    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.BootSource);
        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body, checkFiles: true);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o, bool checkFiles)
    {
        var config = new BootSourceConfig(o.Str("kernel_image_path"), o.OptStr("initrd_path"), o.OptStr("boot_args"));
        if (checkFiles)
        {
            if (OpenError(config.KernelImagePath, readOnly: true) is { } kernelError)
            {
                throw new VmmActionException($"Boot source error: The kernel file cannot be opened: {kernelError}");
            }

            if (config.InitrdPath is not null && OpenError(config.InitrdPath, readOnly: true) is { } initrdError)
            {
                throw new VmmActionException($"Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. {initrdError}");
            }
        }

        vmm.Resources.BootSource = config;
        vmm.BootPath = true;
    }

    /// <summary>Opens and closes <paramref name="path"/>; null when it opened, else Rust's io::Error text.</summary>
    public static string? OpenError(string path, bool readOnly)
    {
        var fd = NativeMethods.Open(path, readOnly ? NativeMethods.O_RDONLY : NativeMethods.O_RDWR);
        if (fd < 0)
        {
            return NativeMethods.OsError(-fd);
        }

        NativeMethods.Close(fd);
        return null;
    }
}
