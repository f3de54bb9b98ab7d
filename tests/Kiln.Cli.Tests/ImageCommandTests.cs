// kiln image build (the tiny base: busybox-static + the agent, built for real with mkfs.ext4 -d) and kiln run --image
// against the stand-in, whose guest runs the real kiln-agent (FAKE_FC_AGENT): the image boots as the sandbox's own
// writable copy, with a vsock, and `kiln exec` works as soon as run returns.
namespace Kiln.Cli.Tests;

public sealed class ImageCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ImageCommandTests()
    {
        _root.Environment["FAKE_FC_AGENT"] = Path.Combine(AppContext.BaseDirectory, "kiln-agent");
        _root.Environment["KILN_AGENT"] = null;
        _root.Environment["KILN_ROOT"] = _root.Root; // exec's command follows `--`, where an appended --root would land
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    private static void RequireImageTools() =>
        Assert.SkipUnless((File.Exists("/usr/bin/busybox") || File.Exists("/bin/busybox")) && File.Exists("/sbin/mkfs.ext4"),
            "busybox-static and e2fsprogs are not installed (apt-get install busybox-static e2fsprogs; .ci/run does)");

    // The native agent when .ci/run published one; else the apphost alone (an ELF linking glibc: fine for an image
    // whose guest is the stand-in, which runs the tests' own agent).
    private string GuestAgent()
    {
        if (Environment.GetEnvironmentVariable("KILN_TEST_AGENT") is { Length: > 0 } native && File.Exists(native))
            return native;
        var lone = Path.Combine(_root.Files, "agent", "kiln-agent");
        Directory.CreateDirectory(Path.GetDirectoryName(lone)!);
        if (!File.Exists(lone))
            File.Copy(Path.Combine(AppContext.BaseDirectory, "kiln-agent"), lone);
        return lone;
    }

    [Fact]
    public async Task Image_build_tiny_writes_an_ext4_image_and_reports_it_as_json()
    {
        RequireImageTools();
        var output = Path.Combine(_root.Files, "tiny.ext4");

        var build = await _root.RunAsync("image", "build", "--tiny", "--output", output, "--agent", GuestAgent(), "--size", "48M", "--json");

        Assert.True(build.ExitCode == 0, build.ToString());
        var json = build.Json();
        Assert.Equal((output, "tiny", 48L * 1024 * 1024), (json.GetProperty("path").GetString(), json.GetProperty("base").GetString(), json.GetProperty("sizeBytes").GetInt64()));
        Assert.Equal(48L * 1024 * 1024, new FileInfo(output).Length);
        Assert.Equal("", build.Stderr); // quiet under --json
        await using var image = File.OpenRead(output);
        var superblock = new byte[2];
        image.Seek(1024 + 0x38, SeekOrigin.Begin);
        await image.ReadExactlyAsync(superblock, TestContext.Current.CancellationToken);
        Assert.Equal(new byte[] { 0x53, 0xEF }, superblock); // ext2/3/4's magic, 0xEF53 little-endian
    }

    [Fact]
    public async Task Image_build_refuses_a_framework_dependent_agent_naming_it()
    {
        var build = await _root.RunAsync("image", "build", "--tiny", "--output", Path.Combine(_root.Files, "x.ext4"),
            "--agent", Path.Combine(AppContext.BaseDirectory, "kiln-agent"));

        Assert.Equal(2, build.ExitCode);
        Assert.Contains("AgentPath", build.Stderr);
        Assert.Contains("framework-dependent", build.Stderr);
        Assert.False(File.Exists(Path.Combine(_root.Files, "x.ext4")));
    }

    [Fact]
    public async Task Image_build_needs_a_name_or_an_output_path()
    {
        var build = await _root.RunAsync("image", "build", "--tiny", "--agent", GuestAgent());

        Assert.Equal(2, build.ExitCode);
        Assert.Contains("--output", build.Stderr);
    }

    [Fact]
    public async Task Run_image_by_name_boots_a_private_copy_and_exec_works_as_soon_as_run_returns()
    {
        RequireImageTools();
        var build = await _root.RunAsync("image", "build", "tiny1", "--tiny", "--agent", GuestAgent());
        Assert.True(build.ExitCode == 0, build.ToString());
        var image = build.Stdout.Trim();
        var before = await File.ReadAllBytesAsync(image, TestContext.Current.CancellationToken);

        var run = await _root.RunAsync("run", "--detach", "--name", "img1", "--kernel", _root.Kernel, "--image", "tiny1");
        var exec = await _root.RunWithoutRootAsync("exec", "img1", "--", "sh", "-c", "echo hi; exit 3");
        var inspect = await _root.RunAsync("inspect", "img1", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal((3, "hi\n"), (exec.ExitCode, exec.Stdout));
        var config = inspect.Json().GetProperty("config");
        var rootfs = Path.Combine(_root.Root, "img1", "rootfs.ext4");
        Assert.Equal(rootfs, config.GetProperty("rootfsPath").GetString());
        Assert.False(config.GetProperty("rootfsReadOnly").GetBoolean());
        Assert.Contains("rw", config.GetProperty("kernelArgs").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal(before, await File.ReadAllBytesAsync(rootfs, TestContext.Current.CancellationToken));
        Assert.Contains(inspect.Json().GetProperty("devices").EnumerateArray(), d => d.GetProperty("kind").GetString() == "vsock");

        var remove = await _root.RunAsync("rm", "--force", "img1");
        Assert.True(remove.ExitCode == 0, remove.ToString());
        Assert.False(File.Exists(rootfs));
        Assert.True(File.Exists(image), "the named image stays");
    }

    [Fact]
    public async Task Run_refuses_image_and_rootfs_together()
    {
        var run = await _root.RunAsync("run", "--detach", "--name", "both", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, "--image", _root.Rootfs);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--image and --rootfs", run.Stderr);
    }

    [Fact]
    public async Task Run_image_that_names_nothing_fails_before_anything_starts()
    {
        var run = await _root.RunAsync("run", "--detach", "--name", "none", "--kernel", _root.Kernel, "--image", "no-such-image");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("no-such-image", run.Stderr);
        Assert.False(Directory.Exists(Path.Combine(_root.Root, "none")));
    }
}
