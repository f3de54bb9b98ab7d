// kiln run --jail against fake-jailer (root only): the sandbox starts under the jailer, inspect shows the jail with its
// cgroups read back, ps and threads see the real VMM, stop and rm leave no jail behind; a foreground run's VMM dies
// with kiln even by SIGKILL; vsock reaches a jailed guest; stats reads its metrics FIFO inside the chroot; template
// clones run jailed (run --template --jail), each in its own chroot; a snapshot restores jailed (restore --jail) with
// each drive given at its recorded path.

namespace Kiln.Cli.Tests;

public sealed class JailTests : IAsyncDisposable
{
    private readonly KilnSandboxRoot _root = new();

    // These boot the stand-in's pretend guest, so they pair fake-jailer with fake-firecracker even when KILN_JAILER
    // names a real jailer (the real jailer's tests are in Kiln.Tests and Kiln.FakeFirecracker.Tests).
    public JailTests() => _root.Environment["KILN_JAILER"] = null;

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

    [Fact]
    public async Task The_tests_own_clean_up_finds_a_jailed_vmm_whose_command_line_names_no_test_path()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var id = "jcl-" + Path.GetFileName(_root.Files)[3..11];
        await _root.RunDetachedAsync(id, ["--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot]);
        var pid = (await _root.PsAsync(id)).GetProperty("pid").GetInt32();

        var found = _root.ProcessesOfThisTest().ToList();
        await _root.KillProcessesOfThisTestAsync();

        Assert.DoesNotContain(pid, KilnSandboxRoot.ProcessesMentioning(_root.Root)); // why the command line is not enough
        Assert.Contains(pid, found);
        Assert.DoesNotContain(pid, _root.ProcessesOfThisTest()); // killed (a zombie has no root and no command line)
        var rm = await _root.RunAsync("rm", id); // its jail, cgroups and record
        Assert.True(rm.ExitCode == 0, rm.ToString());
    }

    [Fact]
    public async Task A_foreground_jailed_run_killed_by_sigkill_leaves_no_process_and_rm_sweeps_its_jail()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var memory = File.Exists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        var id = "jfg-" + Path.GetFileName(_root.Files)[3..11];
        await using var run = _root.Start(["run", "--name", id, "--kernel", _root.Kernel, "--rootfs", _root.Rootfs,
            "--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot, .. memory ? new[] { "--memory-limit", "256M" } : []]);
        var pid = await WaitForRunningAsync(id);
        var jail = (await _root.RunAsync("inspect", id, "--json")).Json().GetProperty("jail");
        var instance = Path.Combine(chroot, "fake-firecracker", id);
        var cgroups = jail.GetProperty("cgroups").EnumerateArray().Select(c => c.GetProperty("directory").GetString()!).ToList();
        try
        {
            Assert.Contains("\nUid:\t65534\t", await File.ReadAllTextAsync($"/proc/{pid}/status", TestContext.Current.CancellationToken), StringComparison.Ordinal);
            // The jailer, its namespace's init and the launcher all carry the id on their command lines, as does the VMM.
            Assert.NotEmpty(KilnSandboxRoot.ProcessesMentioning(id));

            // SIGKILL runs no exit handler in kiln, and the jailer's uid drop cleared any death signal of its own.
            run.Signal(NativeMethods.SIGKILL);
            await run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (KilnSandboxRoot.ProcessesMentioning(id).Any() && DateTime.UtcNow < deadline)
                await Task.Delay(20, TestContext.Current.CancellationToken);
            Assert.Empty(KilnSandboxRoot.ProcessesMentioning(id));
            Assert.True(Directory.Exists(instance), "nobody cleaned the jail yet: its owner was killed");

            var rm = await _root.RunAsync("rm", id);
            Assert.True(rm.ExitCode == 0, rm.ToString());
            Assert.False(Directory.Exists(instance));
            Assert.All(cgroups, c => Assert.False(Directory.Exists(c), c));
        }
        finally
        {
            foreach (var dir in cgroups)
            {
                if (Directory.Exists(dir))
                    TryRemove(dir);
                TryRemove(Path.GetDirectoryName(dir)!);
            }
        }
    }

    [Fact]
    public async Task Stats_reads_the_metrics_of_a_jailed_sandbox_from_the_fifo_inside_its_chroot()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var id = "jmx-" + Path.GetFileName(_root.Files)[3..11];
        await _root.RunDetachedAsync(id, ["--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot, "--metrics"]);
        var instance = Path.Combine(chroot, "fake-firecracker", id);
        try
        {
            Assert.True(File.GetAttributes(Path.Combine(instance, "root", "metrics.fifo")) != 0, "the FIFO is inside the chroot");
            Assert.False(Path.Exists(Path.Combine(_root.Root, id, "metrics.fifo")), "and not in the sandbox directory");

            var stats = await _root.RunAsync("stats", id, "--json");

            Assert.True(stats.ExitCode == 0, stats.ToString());
            var s = stats.Json();
            Assert.True(s.GetProperty("metricsTimestampMs").GetInt64() > 0, stats.Stdout);
            Assert.True(s.GetProperty("metrics").GetProperty("put_api_requests.actions_count").GetInt64() >= 1, stats.Stdout);
        }
        finally
        {
            var stop = await _root.RunAsync("stop", id);
            Assert.True(stop.ExitCode == 0, stop.ToString());
            var rm = await _root.RunAsync("rm", id);
            Assert.True(rm.ExitCode == 0, rm.ToString());
        }
        Assert.False(Directory.Exists(instance));
    }

    [Fact]
    public async Task Vsock_reaches_the_guest_of_a_jailed_sandbox_through_the_sandbox_directorys_socket_path()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var id = "jvs-" + Path.GetFileName(_root.Files)[3..11];
        await _root.RunDetachedAsync(id, ["--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot, "--vsock", "3"]);
        try
        {
            await using var child = _root.Start("vsock", id, "5000");
            await child.WriteStdinAndCloseAsync("hello through the jail\n");
            var result = await child.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal("hello through the jail\n", result.Stdout);
        }
        finally
        {
            var rm = await _root.RunAsync("rm", "--force", id);
            Assert.True(rm.ExitCode == 0, rm.ToString());
            Assert.False(Directory.Exists(Path.Combine(chroot, "fake-firecracker", id)));
        }
    }

    [Fact]
    public async Task Run_template_with_jail_starts_clones_each_in_its_own_chroot_that_stop_and_rm_remove_one_by_one()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var tag = Path.GetFileName(_root.Files)[3..11];
        var (source, template, prefix) = ("jts" + tag, "jt" + tag, "jtc" + tag);
        await _root.RunDetachedAsync(source, ["--vsock", "3"]);
        var create = await _root.RunAsync("template", "create", template, "--from", source);
        Assert.True(create.ExitCode == 0, create.ToString());
        string Instance(int i) => Path.Combine(chroot, "fake-firecracker", $"{prefix}-{i}");
        try
        {
            var run = await _root.RunAsync("run", "--template", template, "--count", "2", "--name", prefix,
                "--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot, "--json");

            Assert.True(run.ExitCode == 0, run.ToString());
            foreach (var i in new[] { 1, 2 })
            {
                var inspect = (await _root.RunAsync("inspect", $"{prefix}-{i}", "--json")).Json();
                Assert.Equal("Running", inspect.GetProperty("state").GetString());
                Assert.Equal(Path.Combine(Instance(i), "root"), inspect.GetProperty("jail").GetProperty("chroot").GetString());
                Assert.Contains("\nUid:\t65534\t", await File.ReadAllTextAsync($"/proc/{inspect.GetProperty("pid").GetInt32()}/status", TestContext.Current.CancellationToken), StringComparison.Ordinal);
                await using var child = _root.Start("vsock", $"{prefix}-{i}", "5000");
                await child.WriteStdinAndCloseAsync($"clone {i}\n");
                var echo = await child.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);
                Assert.True(echo.ExitCode == 0, echo.ToString());
                Assert.Equal($"clone {i}\n", echo.Stdout);
            }

            var stop = await _root.RunAsync("stop", $"{prefix}-1");
            Assert.True(stop.ExitCode == 0, stop.ToString());
            Assert.False(Directory.Exists(Instance(1)));
            Assert.Equal("Running", (await _root.PsAsync($"{prefix}-2")).GetProperty("state").GetString());
        }
        finally
        {
            foreach (var name in new[] { $"{prefix}-1", $"{prefix}-2", source })
                await _root.RunAsync("rm", "--force", name);
        }
        Assert.False(Directory.Exists(Instance(1)));
        Assert.False(Directory.Exists(Instance(2)));
    }

    [Fact]
    public async Task Restore_with_jail_loads_a_snapshot_in_a_chroot_holding_each_drive_given_at_its_recorded_path()
    {
        Assert.SkipUnless(Environment.UserName == "root", "jails need root (CI runs as root)");
        var ct = TestContext.Current.CancellationToken;
        var chroot = Directory.CreateDirectory(Path.Combine(_root.Files, "jails")).FullName;
        var tag = Path.GetFileName(_root.Files)[3..11];
        var (source, copy) = ("jrs" + tag, "jrc" + tag);
        await _root.RunDetachedAsync(source, ["--vsock", "3"]);
        var snapshot = await _root.RunAsync("snapshot", source, "--json");
        Assert.True(snapshot.ExitCode == 0, snapshot.ToString());
        var files = snapshot.Json();
        // Every drive the source has is recorded in the snapshot: its rootfs and its pool's placeholders. The restore
        // gets a copy of each of its own.
        var sourceDirectory = Path.GetDirectoryName(files.GetProperty("statePath").GetString())!;
        var recorded = Directory.GetFiles(sourceDirectory, "pool-*.img").Append(_root.Rootfs).ToArray();
        var bindings = new List<string>();
        foreach (var path in recorded)
        {
            var own = Path.Combine(_root.Files, "own-" + Path.GetFileName(path));
            File.Copy(path, own);
            bindings.AddRange(["--drive-at", $"{path}={own}"]);
        }
        var instance = Path.Combine(chroot, "fake-firecracker", copy);
        try
        {
            var restore = await _root.RunAsync(["restore", copy, "--snapshot", files.GetProperty("statePath").GetString()!, "--mem", files.GetProperty("memoryPath").GetString()!,
                "--jail", "--uid", "65534", "--gid", "65534", "--chroot-base", chroot, .. bindings]);

            Assert.True(restore.ExitCode == 0, restore.ToString());
            var inspect = (await _root.RunAsync("inspect", copy, "--json")).Json();
            Assert.Equal("Running", inspect.GetProperty("state").GetString());
            Assert.Equal(Path.Combine(instance, "root"), inspect.GetProperty("jail").GetProperty("chroot").GetString());
            Assert.Equal(recorded.Order(StringComparer.Ordinal),
                inspect.GetProperty("config").GetProperty("restore").GetProperty("drives").EnumerateArray().Select(d => d.GetProperty("recordedPath").GetString()!).Order(StringComparer.Ordinal));
            var pid = inspect.GetProperty("pid").GetInt32();
            await File.WriteAllTextAsync($"/proc/{pid}/root{_root.Rootfs}", "written in the jail", ct);
            Assert.Equal("written in the jail", await File.ReadAllTextAsync(Path.Combine(_root.Files, "own-" + Path.GetFileName(_root.Rootfs)), ct));
            await using (var child = _root.Start("vsock", copy, "5000"))
            {
                await child.WriteStdinAndCloseAsync("restored\n");
                var echo = await child.WaitAsync(KilnSandboxRoot.CommandTimeout, ct);
                Assert.True(echo.ExitCode == 0, echo.ToString());
                Assert.Equal("restored\n", echo.Stdout);
            }

            var stop = await _root.RunAsync("stop", copy);
            Assert.True(stop.ExitCode == 0, stop.ToString());
            Assert.False(Directory.Exists(instance));
        }
        finally
        {
            foreach (var name in new[] { copy, source })
                await _root.RunAsync("rm", "--force", name);
        }
        Assert.False(Directory.Exists(instance));
    }

    [Theory]
    [InlineData("--drive-at", "relative/path=/etc/hostname", "must be absolute")]
    [InlineData("--drive-at", "/srv/disk.img", "expected RECORDED=FILE")]
    [InlineData("--shared-drive", "/no/such/file.img", "file not found")]
    public async Task Restore_drive_bindings_that_cannot_be_made_are_bad_usage(string option, string value, string message)
    {
        var state = _root.CreateFile("s.state", 16);
        var memory = _root.CreateFile("s.mem", 16);

        var result = await _root.RunAsync("restore", "r", "--snapshot", state, "--mem", memory, option, value);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
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

    private async Task<int> WaitForRunningAsync(string name)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var ps = (await _root.RunAsync("ps", "--json")).Json();
            var entry = ps.EnumerateArray().FirstOrDefault(s => s.GetProperty("name").GetString() == name);
            if (entry.ValueKind != System.Text.Json.JsonValueKind.Undefined && entry.GetProperty("state").GetString() == "Running")
                return entry.GetProperty("pid").GetInt32();
        }
        throw new TimeoutException($"{name} did not reach Running");
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
