// `kiln image build`'s library side for real: a tiny image (busybox-static + the agent) is built with mkfs.ext4 -d and
// read back without mounting it (debugfs, e2fsck -n); its tree, extracted, runs the agent as PID 1 in a PID + mount
// namespace rooted in it; and under real Firecracker (when given) a guest boots it and answers exec.
using System.Security.Cryptography;
using Kiln.Agent.Tests.Support;
using Kiln.Api;
using Kiln.Images;
using Kiln.Testing;
using Kiln.Vm;

namespace Kiln.Agent.Tests;

public sealed class ImageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Busybox()
    {
        var busybox = new[] { "/usr/bin/busybox", "/bin/busybox" }.FirstOrDefault(File.Exists);
        Assert.SkipWhen(busybox is null, "busybox-static is not installed (apt-get install busybox-static; .ci/run does)");
        return busybox!;
    }

    private static async Task<(string Image, string Agent)> BuildTinyAsync(TempDir dir, string agent)
    {
        Ext4Image.RequireTools();
        Busybox();
        var image = dir["tiny.ext4"];
        await ImageBuilder.BuildAsync(new ImageSpec { OutputPath = image, AgentPath = agent, Base = ImageBase.Tiny }, cancellationToken: Ct);
        return (image, agent);
    }

    [Fact]
    public async Task A_tiny_image_holds_the_agent_as_init_busybox_and_the_libraries_the_agent_links()
    {
        using var dir = new TempDir();
        var progress = new List<ImageBuildProgress>();
        Ext4Image.RequireTools();
        var busybox = Busybox();
        var agent = NativeAgent.ForContents(dir);

        var result = await ImageBuilder.BuildAsync(
            new ImageSpec { OutputPath = dir["tiny.ext4"], AgentPath = agent, Base = ImageBase.Tiny },
            new SynchronousProgress(progress), Ct);
        var image = result.Path;

        var sbin = await Ext4Image.ListAsync(image, "/sbin");
        var kilnAgent = Assert.Single(sbin, e => e.Name == "kiln-agent");
        Assert.Equal((0, 0, 0x81ED, new FileInfo(agent).Length), (kilnAgent.Uid, kilnAgent.Gid, kilnAgent.Mode, kilnAgent.Size)); // root's, 0100755
        Assert.Equal("kiln-agent", await Ext4Image.LinkTargetAsync(image, "/sbin/init"));
        await Ext4Image.DumpAsync(image, "/sbin/kiln-agent", dir["agent-out"]);
        Assert.Equal(SHA256.HashData(await File.ReadAllBytesAsync(agent, Ct)), SHA256.HashData(await File.ReadAllBytesAsync(dir["agent-out"], Ct)));

        var bin = await Ext4Image.ListAsync(image, "/bin");
        Assert.Equal(new FileInfo(busybox).Length, Assert.Single(bin, e => e.Name == "busybox").Size);
        Assert.Equal("/bin/busybox", await Ext4Image.LinkTargetAsync(image, "/bin/sh"));
        Assert.Contains(await Ext4Image.ListAsync(image, "/lib/x86_64-linux-gnu"), e => e.Name == "libc.so.6" && e.Size > 0);
        Assert.Contains(await Ext4Image.ListAsync(image, "/lib64"), e => e.Name == "ld-linux-x86-64.so.2" && e.Size > 0);
        Assert.Contains(await Ext4Image.ListAsync(image, "/"), e => e.Name == "tmp" && e.Mode == 0x43FF); // 041777

        var check = await Ext4Image.CheckAsync(image);
        Assert.True(check.ExitCode == 0, check.Output);
        Assert.Equal(ImageBuilder.Label, await Ext4Image.LabelAsync(image));
        Assert.Equal(ImageBuilder.DefaultSize(ImageBase.Tiny, result.ContentBytes), result.SizeBytes);
        Assert.Equal(["agent", "done", "mkfs", "stage"], progress.Select(p => p.Step).Distinct().Order());
        Assert.DoesNotContain(Directory.GetFileSystemEntries(dir.Path), p => Path.GetFileName(p).StartsWith('.')); // no staging or partial file left
    }

    [Fact]
    public async Task The_agent_in_a_tiny_image_runs_as_PID_1_and_execs_the_images_own_busybox()
    {
        Assert.SkipUnless(Environment.UserName == "root" && File.Exists("/usr/bin/unshare"), "PID namespaces need root and util-linux's unshare");
        using var dir = new TempDir();
        var (image, _) = await BuildTinyAsync(dir, NativeAgent.Require());
        var root = Directory.CreateDirectory(dir["root"]).FullName;
        await Ext4Image.ExtractAsync(image, root);

        // The image's tree as the namespace's root: what runs is the image's /sbin/init, libraries and busybox.
        await using var agent = await AgentProcess.StartAsync(Path.Combine(root, "work/agent.sock"), "/usr/bin/unshare",
            ["--pid", "--fork", "--kill-child", "--mount", "--propagation", "private", "--root", root, "--", "/sbin/init", "--unix", "/work/agent.sock"]);
        var health = await agent.Client.HealthAsync(Ct);
        var result = await agent.Client.ExecAsync(["sh", "-c", "echo hi from $(cat /etc/hostname); readlink /proc/1/exe; exit 3"], Ct);
        await agent.Client.Files.WriteAsync("/work/from-host.txt", "written through the agent"u8.ToArray(), Ct);
        await agent.Client.PowerOffAsync(Ct);
        await agent.Process.WaitForExitAsync(Ct);

        Assert.True(health.IsInit);
        Assert.Equal(("hi from kiln\n/sbin/kiln-agent\n", 3), (result.Stdout, result.ExitCode));
        Assert.Equal("written through the agent", await File.ReadAllTextAsync(Path.Combine(root, "work/from-host.txt"), Ct));
    }

    [Fact]
    public async Task A_framework_dependent_agent_is_refused_naming_the_agent_before_anything_is_made()
    {
        using var dir = new TempDir();

        var e = await Assert.ThrowsAsync<ImageSpecException>(() => ImageBuilder.BuildAsync(
            new ImageSpec { OutputPath = dir["x.ext4"], AgentPath = AgentProcess.BinaryPath, Base = ImageBase.Tiny }, cancellationToken: Ct));

        Assert.Equal(nameof(ImageSpec.AgentPath), e.PropertyName);
        Assert.Contains("framework-dependent", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Theory]
    [InlineData(nameof(ImageSpec.Packages), "tiny", "curl")]
    [InlineData(nameof(ImageSpec.Packages), "debian", "curl;rm -rf /")]
    [InlineData(nameof(ImageSpec.Suite), "debian", "")]
    [InlineData(nameof(ImageSpec.SizeBytes), "tiny", "")]
    [InlineData(nameof(ImageSpec.OutputPath), "tiny", "")]
    public void An_invalid_spec_names_the_property_at_fault(string property, string imageBase, string package)
    {
        using var dir = new TempDir();
        var agent = NativeAgent.ForContents(dir);
        File.WriteAllText(dir["exists.ext4"], "");
        var spec = new ImageSpec
        {
            OutputPath = property == nameof(ImageSpec.OutputPath) ? dir["exists.ext4"] : dir["new.ext4"],
            AgentPath = agent,
            Base = imageBase == "tiny" ? ImageBase.Tiny : ImageBase.Debian,
            Packages = package.Length > 0 ? [package] : [],
            Suite = property == nameof(ImageSpec.Suite) ? "../etc" : "bookworm",
            SizeBytes = property == nameof(ImageSpec.SizeBytes) ? 4096 : null,
        };

        var e = Assert.Throws<ImageSpecException>(spec.Validate);

        Assert.Equal(property, e.PropertyName);
    }

    [Fact]
    public async Task A_build_that_fails_at_mkfs_removes_its_staging_directory_and_partial_image()
    {
        using var dir = new TempDir();
        Ext4Image.RequireTools();
        Busybox();
        var agent = NativeAgent.ForContents(dir);

        // 8 MiB cannot hold a few MiB of busybox and agent plus ext4's own metadata and inodes for ~400 links.
        var e = await Assert.ThrowsAsync<ImageBuildException>(() => ImageBuilder.BuildAsync(
            new ImageSpec { OutputPath = dir["small.ext4"], AgentPath = agent, Base = ImageBase.Tiny, SizeBytes = ImageSpec.MinimumSizeBytes },
            cancellationToken: Ct));

        Assert.Equal("mkfs", e.Step);
        Assert.DoesNotContain(Directory.GetFileSystemEntries(dir.Path), p => Path.GetFileName(p).StartsWith('.') || p.EndsWith(".ext4", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_guest_booted_from_a_tiny_image_answers_exec_under_real_Firecracker()
    {
        var firecracker = RealFirecracker.Binary(out var reason);
        Assert.SkipWhen(firecracker is null, reason);
        Assert.SkipUnless(RealFirecracker.KvmOpens(out reason), reason);
        var kernel = Environment.GetEnvironmentVariable("KILN_TEST_KERNEL");
        Assert.SkipWhen(kernel is null or "" || !File.Exists(kernel), "no guest kernel: set KILN_TEST_KERNEL (virtio-mmio, virtio-blk, ext4 and vsock built in)");
        var nativeAgent = NativeAgent.Require();
        RealFirecracker.RecordRun();
        using var dir = new TempDir();
        var (image, _) = await BuildTinyAsync(dir, nativeAgent);

        var description = new MachineDescription
        {
            BootSource = new BootSource { KernelImagePath = kernel!, BootArgs = "console=ttyS0 reboot=k panic=1 pci=off" },
            MachineConfig = new MachineConfiguration { VcpuCount = 1, MemSizeMib = 256 },
            Devices =
            [
                new MachineDrive(new Drive { DriveId = "rootfs", PathOnHost = image, IsRootDevice = true, IsReadOnly = false }),
                new MachineVsock(new Vsock { GuestCid = 3, UdsPath = dir["v.sock"] }),
            ],
        };
        await using var vm = await Microvm.BootAsync(description, new MicrovmOptions
        {
            FirecrackerPath = firecracker!,
            SocketPath = dir["fc.sock"],
            ConsolePath = dir["console.log"],
            WorkingDirectory = dir.Path,
        }, Ct);

        var health = await vm.WaitForAgentAsync(RealFirecracker.BootTimeout(), Ct);
        var result = await vm.ExecAsync(["sh", "-c", "cat /etc/hostname; exit 3"], Ct);
        await vm.Files.WriteAsync("/work/input.txt", "bytes"u8.ToArray(), Ct);
        var back = await vm.Files.ReadAllBytesAsync("/work/input.txt", Ct);
        await vm.StopAsync(ShutdownPlan.Kill(), Ct);

        Assert.True(health.IsInit, File.ReadAllText(dir["console.log"]));
        Assert.Equal(("kiln\n", 3), (result.Stdout, result.ExitCode));
        Assert.Equal("bytes"u8.ToArray(), back);
    }

    // Progress<T> posts to the thread pool; a test reads the reports after the build, so it records them as they come.
    private sealed class SynchronousProgress(List<ImageBuildProgress> into) : IProgress<ImageBuildProgress>
    {
        public void Report(ImageBuildProgress value)
        {
            lock (into)
                into.Add(value);
        }
    }
}
