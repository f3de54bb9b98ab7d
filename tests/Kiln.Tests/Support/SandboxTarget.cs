using System.Text.RegularExpressions;
using Kiln.Sandbox;
using Kiln.Testing;

namespace Kiln.Tests.Support;

/// <summary>
/// What a guest-level test runs against: the stand-in (always), or real Firecracker with a real guest when the VM
/// tier's variables are set (KILN_FIRECRACKER, /dev/kvm, KILN_TEST_KERNEL, KILN_TEST_ROOTFS and/or KILN_TEST_INITRD).
/// Both are waited on the same way: for the guest's ready line on its console, within the target's boot timeout.
/// </summary>
public sealed record SandboxTarget(string Name, string FirecrackerPath, string KernelPath, string? InitrdPath, string? ImagePath,
    IReadOnlyList<KernelParam> KernelParams, Regex ReadyPattern, TimeSpan BootTimeout, int? VsockEchoPort, int MemoryMiB)
{
    public static string FakePath => Path.Combine(AppContext.BaseDirectory, "fake-firecracker");

    /// <summary>The target names a theory runs over: the stand-in and real Firecracker.</summary>
    public static TheoryData<string> Names => ["fake", "real"];

    public bool IsReal => Name == "real";

    /// <summary>The named target; a real one skips the test with the reason when the machine has no guest to boot.</summary>
    public static SandboxTarget For(string name, TempRoot root) => name switch
    {
        "fake" => Fake(root),
        "real" => Real(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "a target is 'fake' or 'real'"),
    };

    /// <summary>The stand-in, with placeholder kernel and rootfs files in <paramref name="root"/>; its pretend guest
    /// prints the same ready line a Linux guest does and echoes on vsock port 5000.</summary>
    public static SandboxTarget Fake(TempRoot root)
    {
        File.WriteAllText(root.Combine("vmlinux"), "not a kernel");
        File.WriteAllText(root.Combine("rootfs.ext4"), "not a filesystem");
        return new SandboxTarget("fake", FakePath, root.Combine("vmlinux"), null, root.Combine("rootfs.ext4"), [],
            new Regex(RealFirecracker.DefaultReadyPattern, RegexOptions.Multiline), TimeSpan.FromSeconds(30), RealFirecracker.DefaultVsockEchoPort, MemoryMiB: 128);
    }

    /// <summary>Real Firecracker and the configured guest; skips the test with the reason when there is none.</summary>
    public static SandboxTarget Real()
    {
        var guest = RealFirecracker.RequireGuest();
        var parameters = guest.KernelArgs.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2) is [var k, var v] ? new KernelParam(k, v) : new KernelParam(p))
            .ToArray();
        // 256 MiB: enough for the systemd guests Firecracker's CI images carry, small enough to snapshot quickly.
        return new SandboxTarget("real", guest.Firecracker, guest.Kernel, guest.Initrd, guest.Rootfs, parameters,
            guest.ReadyPattern, guest.BootTimeout, guest.VsockEchoPort, MemoryMiB: 256);
    }

    public HypervisorConfig Config(TempRoot root, int poolSize = 2) => new()
    {
        FirecrackerPath = FirecrackerPath,
        KernelPath = KernelPath,
        InitrdPath = InitrdPath,
        ImagePath = ImagePath,
        KernelParams = KernelParams,
        VcpuCount = 2,
        MemoryMiB = MemoryMiB,
        BlockPoolSize = poolSize,
        RootDirectory = root.Combine("sb"),
        StopTimeout = TimeSpan.FromSeconds(5),
    };
}
