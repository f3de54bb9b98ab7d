// kiln run --jail against fake-jailer (root only): the sandbox starts under the jailer, inspect shows the jail with its
// cgroups read back, ps and threads see the real VMM, stop and rm leave no jail behind.

namespace Kiln.Cli.Tests;

public sealed class JailTests : IAsyncDisposable
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Fact]
    public async Task Run_with_jail_starts_under_the_jailer_and_inspect_shows_the_jail_until_rm_removes_it()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var cpu = File.Exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
        var memory = File.Exists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        string[] limits = [.. cpu ? new[] { "--cpus", "0.5" } : [], .. memory ? new[] { "--memory-limit", "256M" } : []];
        var id = "jailed-" + Path.GetFileName(_root.Files)[3..11];

        await _root.RunDetachedAsync(id, ["--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot, .. limits]);
        var inspect = (await _root.RunAsync("inspect", id, "--json")).Json();
        var jail = inspect.GetProperty("jail");
        var instance = Path.Combine(chroot, "fake-firecracker", id);
        try
        {
            Assert.Equal(Path.Combine(instance, "root"), jail.GetProperty("chroot").GetString());
            Assert.Equal(65534u, jail.GetProperty("uid").GetUInt32());
            var pid = inspect.GetProperty("pid").GetInt32();
            Assert.Equal(pid, jail.GetProperty("pid").GetInt32());
            Assert.Contains("\nUid:\t65534\t", await File.ReadAllTextAsync($"/proc/{pid}/status", TestContext.Current.CancellationToken), StringComparison.Ordinal);
            Assert.Equal((cpu ? 1 : 0) + (memory ? 1 : 0), jail.GetProperty("cgroups").GetArrayLength());
            foreach (var cgroup in jail.GetProperty("cgroups").EnumerateArray())
                Assert.Equal(cgroup.GetProperty("requested").GetString(), cgroup.GetProperty("current").GetString());
            var threads = await _root.RunAsync("threads", id, "--json");
            Assert.True(threads.ExitCode == 0, threads.ToString());
            Assert.Equal(pid, threads.Json().GetProperty("pid").GetInt32());

            var stop = await _root.RunAsync("stop", id);
            Assert.True(stop.ExitCode == 0, stop.ToString());
            var rm = await _root.RunAsync("rm", id);
            Assert.True(rm.ExitCode == 0, rm.ToString());

            Assert.False(Directory.Exists(instance));
            foreach (var cgroup in jail.GetProperty("cgroups").EnumerateArray())
                Assert.False(Directory.Exists(cgroup.GetProperty("directory").GetString()));
        }
        finally
        {
            // The shared parent cgroup (the exec file's name) is the jailer's convention and stays while others use it.
            foreach (var cgroup in jail.GetProperty("cgroups").EnumerateArray())
            {
                var dir = cgroup.GetProperty("directory").GetString()!;
                if (Directory.Exists(dir))
                    TryRemove(dir);
                TryRemove(Path.GetDirectoryName(dir)!);
            }
        }
    }

    [Theory]
    [InlineData("--uid", "1")]
    [InlineData("--cpus", "1")]
    [InlineData("--netns", "/var/run/netns/x")]
    public async Task Jail_options_without_jail_are_bad_usage(string option, string value)
    {
        var result = await _root.RunAsync("run", "--detach", "--name", "nojail", "--kernel", _root.Kernel, "--rootfs", _root.Rootfs, option, value);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{option} applies to a jailed run: add --jail.", result.Stderr, StringComparison.Ordinal);
    }

    private static void TryRemove(string dir)
    {
        try
        {
            Directory.Delete(dir);
        }
        catch (IOException)
        {
            // Another test's VMM still uses it.
        }
    }
}
