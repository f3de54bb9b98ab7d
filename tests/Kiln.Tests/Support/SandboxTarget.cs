using Kiln.Sandbox;

namespace Kiln.Tests.Support;

/// <summary>
/// What a lifecycle test runs against: the stand-in (always), or real Firecracker when KILN_FIRECRACKER names a
/// binary, /dev/kvm opens, and a kernel plus an initrd and/or a rootfs are given.
/// </summary>
public sealed record SandboxTarget(string Name, string FirecrackerPath, string KernelPath, string? InitrdPath, string? ImagePath,
    IReadOnlyList<KernelParam> KernelParams, string? BootMarker)
{
    public static string FakePath => Path.Combine(AppContext.BaseDirectory, "fake-firecracker");

    public bool IsReal => Name == "real";

    /// <summary>The stand-in, with placeholder kernel and rootfs files in <paramref name="root"/>.</summary>
    public static SandboxTarget Fake(TempRoot root)
    {
        File.WriteAllText(root.Combine("vmlinux"), "not a kernel");
        File.WriteAllText(root.Combine("rootfs.ext4"), "not a filesystem");
        return new SandboxTarget("fake", FakePath, root.Combine("vmlinux"), null, root.Combine("rootfs.ext4"), [], BootMarker: null);
    }

    /// <summary>Real Firecracker, or null with the reason it cannot run here.</summary>
    public static SandboxTarget? Real(out string skipReason)
    {
        var fc = Environment.GetEnvironmentVariable("KILN_FIRECRACKER");
        var kernel = Environment.GetEnvironmentVariable("KILN_TEST_KERNEL");
        var initrd = NullIfEmpty(Environment.GetEnvironmentVariable("KILN_TEST_INITRD"));
        var rootfs = NullIfEmpty(Environment.GetEnvironmentVariable("KILN_TEST_ROOTFS"));
        var args = Environment.GetEnvironmentVariable("KILN_TEST_KERNEL_ARGS");
        if (string.IsNullOrEmpty(fc) || !File.Exists(fc))
        {
            skipReason = "KILN_FIRECRACKER does not name a firecracker binary";
            return null;
        }
        try
        {
            using var kvm = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
        }
        catch (Exception e)
        {
            skipReason = $"/dev/kvm cannot be opened ({e.Message})";
            return null;
        }
        if (string.IsNullOrEmpty(kernel) || !File.Exists(kernel))
        {
            skipReason = "KILN_TEST_KERNEL does not name a guest kernel";
            return null;
        }
        if (initrd is null && rootfs is null)
        {
            skipReason = "neither KILN_TEST_INITRD nor KILN_TEST_ROOTFS is set";
            return null;
        }
        var parameters = (args ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2) is [var k, var v] ? new KernelParam(k, v) : new KernelParam(p))
            .ToArray();
        skipReason = "";
        // Hot-plug is only reported once the guest's virtio_blk driver has probed: wait for the kernel to hand over to init.
        return new SandboxTarget("real", fc, kernel, initrd, rootfs, parameters, BootMarker: "Freeing unused kernel");
    }

    public HypervisorConfig Config(TempRoot root, int poolSize = 2) => new()
    {
        FirecrackerPath = FirecrackerPath,
        KernelPath = KernelPath,
        InitrdPath = InitrdPath,
        ImagePath = ImagePath,
        KernelParams = KernelParams,
        VcpuCount = 2,
        MemoryMiB = 128,
        BlockPoolSize = poolSize,
        RootDirectory = root.Combine("sb"),
        StopTimeout = TimeSpan.FromSeconds(5),
    };

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
