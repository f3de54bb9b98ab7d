// What this machine offers the real-Firecracker test tiers, read from the environment. Linked into every test
// project, so the three agree on the variables, the skip reasons and the count `.ci/run` prints.
//   API tier: KILN_FIRECRACKER names a firecracker binary (no KVM needed: everything before InstanceStart).
//   VM tier:  also /dev/kvm opens, KILN_TEST_KERNEL and KILN_TEST_ROOTFS and/or KILN_TEST_INITRD name a guest.
// A test that passes the gate is written to KILN_TEST_REAL_LOG (one line per test), which `.ci/run` counts.
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Testing;

/// <summary>A guest to boot under real Firecracker, with how to tell that it is up.</summary>
public sealed record RealGuest(
    string Firecracker,
    string Kernel,
    string? Initrd,
    string? Rootfs,
    string KernelArgs,
    Regex ReadyPattern,
    TimeSpan BootTimeout,
    int? VsockEchoPort);

public static class RealFirecracker
{
    /// <summary>A line every Linux guest prints once its drivers have probed and it hands over to init.</summary>
    public const string DefaultReadyPattern = @"Run \S+ as init process";

    /// <summary>Generous: guests on nested or software KVM have taken 50–120 s to reach init.</summary>
    public static readonly TimeSpan DefaultBootTimeout = TimeSpan.FromSeconds(300);

    public const int DefaultVsockEchoPort = 5000;

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    /// <summary>KILN_FIRECRACKER when it names an executable file; otherwise null and why.</summary>
    public static string? Binary(out string skipReason)
    {
        var path = Env("KILN_FIRECRACKER");
        if (path is null)
        {
            skipReason = "real Firecracker not configured: set KILN_FIRECRACKER to a firecracker v1.16.1 binary";
            return null;
        }

        if (!File.Exists(path))
        {
            skipReason = $"KILN_FIRECRACKER={path} does not exist";
            return null;
        }

        if ((File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
        {
            skipReason = $"KILN_FIRECRACKER={path} is not executable (chmod +x it)";
            return null;
        }

        skipReason = "";
        return Path.GetFullPath(path);
    }

    /// <summary>Whether KVM can be used here; otherwise why not.</summary>
    public static bool KvmOpens(out string skipReason)
    {
        try
        {
            using var kvm = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            skipReason = "";
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            skipReason = $"/dev/kvm cannot be opened ({e.Message})";
            return false;
        }
    }

    /// <summary>The VM tier's guest, or null and why it cannot run here.</summary>
    public static RealGuest? Guest(out string skipReason)
    {
        if (Binary(out skipReason) is not { } firecracker || !KvmOpens(out skipReason))
        {
            return null;
        }

        var kernel = Env("KILN_TEST_KERNEL");
        var initrd = Env("KILN_TEST_INITRD");
        var rootfs = Env("KILN_TEST_ROOTFS");
        if (kernel is null || !File.Exists(kernel))
        {
            skipReason = kernel is null ? "no guest: set KILN_TEST_KERNEL (and KILN_TEST_ROOTFS or KILN_TEST_INITRD)" : $"KILN_TEST_KERNEL={kernel} does not exist";
            return null;
        }

        if (initrd is null && rootfs is null)
        {
            skipReason = "no guest root: set KILN_TEST_ROOTFS (an ext4 image) or KILN_TEST_INITRD";
            return null;
        }

        foreach (var (name, path) in new[] { ("KILN_TEST_INITRD", initrd), ("KILN_TEST_ROOTFS", rootfs) })
        {
            if (path is not null && !File.Exists(path))
            {
                skipReason = $"{name}={path} does not exist";
                return null;
            }
        }

        skipReason = "";
        return new RealGuest(
            firecracker,
            Path.GetFullPath(kernel),
            initrd is null ? null : Path.GetFullPath(initrd),
            rootfs is null ? null : Path.GetFullPath(rootfs),
            Env("KILN_TEST_KERNEL_ARGS") ?? "",
            new Regex(Env("KILN_TEST_READY_PATTERN") ?? DefaultReadyPattern, RegexOptions.Multiline),
            BootTimeout(),
            VsockEchoPort());
    }

    /// <summary>KILN_TEST_BOOT_TIMEOUT in seconds: how long any wait on the guest may take.</summary>
    public static TimeSpan BootTimeout() =>
        Env("KILN_TEST_BOOT_TIMEOUT") is { } s ? TimeSpan.FromSeconds(double.Parse(s, CultureInfo.InvariantCulture)) : DefaultBootTimeout;

    /// <summary>KILN_TEST_VSOCK_PORT: the vsock port where the guest echoes lines back; "none" when it has no such service.</summary>
    private static int? VsockEchoPort() => Env("KILN_TEST_VSOCK_PORT") switch
    {
        null => DefaultVsockEchoPort,
        "none" => null,
        var port => int.Parse(port, CultureInfo.InvariantCulture),
    };

    /// <summary>KILN_JAILER (with KILN_FIRECRACKER, its exec file) when both name executables; otherwise null and why.</summary>
    public static (string Jailer, string Firecracker)? JailerPair(out string skipReason)
    {
        var jailer = Env("KILN_JAILER");
        if (jailer is null)
        {
            skipReason = "real jailer not configured: set KILN_JAILER to a jailer v1.16.1 binary (and KILN_FIRECRACKER to its firecracker)";
            return null;
        }

        if (!File.Exists(jailer) || (File.GetUnixFileMode(jailer) & UnixFileMode.UserExecute) == 0)
        {
            skipReason = $"KILN_JAILER={jailer} is not an executable file";
            return null;
        }

        return Binary(out skipReason) is { } firecracker ? (Path.GetFullPath(jailer), firecracker) : null;
    }

    /// <summary>The real jailer and firecracker (API tier: no KVM needed); skips the test with the reason when absent.</summary>
    public static (string Jailer, string Firecracker) RequireJailer()
    {
        var pair = JailerPair(out var reason);
        if (pair is null)
        {
            Assert.Skip(reason);
        }

        RecordRun();
        return pair!.Value;
    }

    /// <summary>The API tier's binary; skips the test with the reason when there is none.</summary>
    public static string RequireBinary()
    {
        var binary = Binary(out var reason);
        if (binary is null)
        {
            Assert.Skip(reason);
        }

        RecordRun();
        return binary;
    }

    /// <summary>The VM tier's guest; skips the test with the reason when there is none.</summary>
    public static RealGuest RequireGuest()
    {
        var guest = Guest(out var reason);
        if (guest is null)
        {
            Assert.Skip(reason);
        }

        RecordRun();
        return guest;
    }

    /// <summary>Notes that the current test runs against real Firecracker (for `.ci/run`'s count).</summary>
    public static void RecordRun()
    {
        if (Env("KILN_TEST_REAL_LOG") is { } log && TestContext.Current.Test?.TestDisplayName is { } name)
        {
            // One short append per test: atomic with O_APPEND, so parallel test processes do not interleave.
            File.AppendAllText(log, name.ReplaceLineEndings(" ") + "\n");
        }
    }
}
