// fake-jailer against Firecracker's jailer contract (tests/assets/jailer/FACTS.md). Root-only and real: the chroot,
// the uid drop, the cgroups, the namespaces. Each runs against the stand-in and, with KILN_JAILER (and KILN_FIRECRACKER),
// against the real jailer too; without them the real variant is reported skipped with the reason.
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class JailerTests
{
    private const uint JailUid = 99999;
    private const uint JailGid = 99998;
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void RequireRoot()
    {
        Assert.SkipUnless(Environment.UserName == "root", "the jailer needs root (CI runs as root)");
    }

    public static TheoryData<string[], string, string> BadInput => new()
    {
        { ["--id", "j1", "--uid", "1000"], "Failed to parse arguments: Argument 'exec-file' required, but not found.", "ArgumentParsing(MissingArgument(\"exec-file\"))" },
        { ["{required}", "--bogus"], "Failed to parse arguments: Found argument 'bogus' which wasn't expected, or isn't valid in this context.", "ArgumentParsing(UnexpectedArgument(\"bogus\"))" },
        { ["--id", "bad id", "--exec-file", "{exec}", "--uid", "1", "--gid", "1"], "Invalid instance ID: Invalid char ( ) at position 3", "InvalidInstanceId(InvalidChar(' ', 3))" },
        { ["--id", new string('a', 72), "--exec-file", "{exec}", "--uid", "1", "--gid", "1"], "Invalid instance ID: Invalid len (72);  the length must be between 1 and 64", "InvalidInstanceId(InvalidLen(72, 1, 64))" },
        { ["--id", "j1", "--exec-file", "{base}/nope", "--uid", "1", "--gid", "1"], "Failed to canonicalize path {base}/nope: No such file or directory (os error 2)", "Canonicalize(\"{base}/nope\", Os { code: 2, kind: NotFound, message: \"No such file or directory\" })" },
        { ["--id", "j1", "--exec-file", "{base}", "--uid", "1", "--gid", "1"], "{base} is not a file", "NotAFile(\"{base}\")" },
        { ["--id", "j1", "--exec-file", "{exec}", "--uid", "abc", "--gid", "1", "--chroot-base-dir", "{base}"], "Invalid uid: abc", "Uid(\"abc\")" },
        { ["--id", "j1", "--exec-file", "{exec}", "--uid", "1", "--gid", "1", "--chroot-base-dir", "{base}/notdir"], "{base}/notdir is not a directory", "NotADirectory(\"{base}/notdir\")" },
        { ["{required}", "--cgroup", "bogus"], "Invalid format for cgroups: bogus", "CgroupFormat(\"bogus\")" },
        { ["{required}", "--cgroup", "cpu.nosuchfile=1"], "Failed to read file {cpu}/{parent}/cpu.nosuchfile into a string: No such file or directory (os error 2)", "ReadToString(\"{cpu}/{parent}/cpu.nosuchfile\", Os { code: 2, kind: NotFound, message: \"No such file or directory\" })" },
        { ["{required}", "--netns", "/var/run/netns/kiln-nope"], "Failed to open file /var/run/netns/kiln-nope: No such file or directory (os error 2)", "FileOpen(\"/var/run/netns/kiln-nope\", Os { code: 2, kind: NotFound, message: \"No such file or directory\" })" },
        { ["{required}", "--resource-limit", "bogus=1"], "Invalid resource argument: bogus", "ResLimitArgument(\"bogus\")" },
        { ["{required}", "--resource-limit", "no-file=abc"], "Invalid limit value for resource: abc: invalid digit found in string", "ResLimitValue(\"abc\", \"invalid digit found in string\")" },
    };

    public static TheoryData<string, string[], string, string> BadInputOnTargets()
    {
        var data = new TheoryData<string, string[], string, string>();
        foreach (var target in new[] { "fake", "real" })
        {
            foreach (var row in BadInput)
            {
                var (args, display, debug) = row.Data;
                data.Add(target, args, display, debug);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BadInputOnTargets))]
    public async Task Bad_input_is_refused_with_the_jailers_text_and_exit_1(string target, string[] args, string display, string debug)
    {
        RequireRoot();
        await using var jail = new JailScope(target);
        await File.WriteAllTextAsync(Path.Combine(jail.Base, "notdir"), "", Ct);
        var cpu = JailScope.CgroupMounts().FirstOrDefault(m => m.EndsWith("/cpu", StringComparison.Ordinal)) ?? "/sys/fs/cgroup/cpu";
        string Fill(string s) => s.Replace("{base}", jail.Base, StringComparison.Ordinal).Replace("{exec}", jail.ExecFile, StringComparison.Ordinal)
            .Replace("{cpu}", cpu, StringComparison.Ordinal).Replace("{parent}", jail.ParentCgroup, StringComparison.Ordinal);
        var argv = args.SelectMany(a => a == "{required}" ? jail.Args(JailUid, JailGid) : [Fill(a)]).ToArray();

        await using var jailer = FakeProcess.StartProgram(jail.Jailer, argv);
        var code = await jailer.WaitExitAsync(Within, Ct);

        Assert.Equal(1, code);
        Assert.Matches(@"^\S+ " + System.Text.RegularExpressions.Regex.Escape(Fill(display)) + "\n", jailer.Output);
        Assert.Contains("Error: " + Fill(debug) + "\n", jailer.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(JailScope.Targets), MemberType = typeof(JailScope))]
    public async Task Help_prints_the_jailers_help_text(string target)
    {
        var expected = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "assets", "jailer", "help.txt"), Ct);

        await using var jailer = FakeProcess.StartProgram(JailScope.JailerFor(target).Jailer, ["--help"]);

        Assert.Equal(0, await jailer.WaitExitAsync(Within, Ct));
        Assert.StartsWith(expected.TrimEnd('\n'), jailer.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(JailScope.Targets), MemberType = typeof(JailScope))]
    public async Task A_jailed_run_builds_the_tree_drops_to_the_uid_and_applies_cgroups_and_limits(string target)
    {
        RequireRoot();
        await using var jail = new JailScope(target);
        var cgroups = CgroupV1("cpu") is null || CgroupV1("memory") is null
            ? []
            : new[] { "--cgroup", "cpu.cfs_quota_us=50000", "--cgroup", "memory.limit_in_bytes=268435456" };

        await using var jailer = FakeProcess.StartProgram(jail.Jailer, jail.Args(JailUid, JailGid, [.. cgroups, "--resource-limit", "no-file=512"]), jail.ApiSocket);
        Assert.True(await jailer.WaitForApiAsync(Within, Ct), jailer.Output);
        // Without --daemonize/--new-pid-ns the exec file replaces the jailer: same PID, and no PID file (env.rs
        // writes it only from exec_into_new_pid_ns).
        var pid = jailer.Pid;
        Assert.False(File.Exists(jail.PidFile), "no PID file without --new-pid-ns");
        var status = await File.ReadAllTextAsync($"/proc/{pid}/status", Ct);
        Assert.Matches($@"\nUid:\t{JailUid}\t{JailUid}\t{JailUid}\t{JailUid}\n", status);
        Assert.Matches($@"\nGid:\t{JailGid}\t{JailGid}\t{JailGid}\t{JailGid}\n", status);
        Assert.Equal("/" + jail.ExecName, new FileInfo($"/proc/{pid}/exe").LinkTarget);
        Assert.Equal("/", new FileInfo($"/proc/{pid}/root").LinkTarget);

        AssertEntry(jail.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, JailUid, JailGid);
        foreach (var dir in new[] { "dev", "dev/net", "run" })
        {
            AssertEntry(Path.Combine(jail.Root, dir), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, JailUid, JailGid);
        }

        foreach (var (device, major, minor) in new[] { ("dev/kvm", 10u, 232u), ("dev/net/tun", 10u, 200u), ("dev/urandom", 1u, 9u) })
        {
            var path = Path.Combine(jail.Root, device);
            AssertEntry(path, UnixFileMode.UserRead | UnixFileMode.UserWrite, JailUid, JailGid);
            Assert.Equal((major, minor), NativeMethods.CharDevice(path));
        }

        var copy = Path.Combine(jail.Root, jail.ExecName);
        Assert.Equal(new FileInfo(jail.ExecFile).Length, new FileInfo(copy).Length);
        Assert.NotEqual(NativeMethods.Inode(jail.ExecFile), NativeMethods.Inode(copy));

        Assert.Contains("Max open files            512                  512", await File.ReadAllTextAsync($"/proc/{pid}/limits", Ct), StringComparison.Ordinal);
        if (cgroups.Length > 0)
        {
            Assert.Equal("50000", (await File.ReadAllTextAsync(Path.Combine(CgroupV1("cpu")!, jail.ParentCgroup, jail.Id, "cpu.cfs_quota_us"), Ct)).Trim());
            Assert.Equal("268435456", (await File.ReadAllTextAsync(Path.Combine(CgroupV1("memory")!, jail.ParentCgroup, jail.Id, "memory.limit_in_bytes"), Ct)).Trim());
            var procCgroup = await File.ReadAllTextAsync($"/proc/{pid}/cgroup", Ct);
            Assert.Matches($@":cpu:/{jail.ParentCgroup}/{jail.Id}\n", procCgroup);
            Assert.Matches($@":memory:/{jail.ParentCgroup}/{jail.Id}\n", procCgroup);
        }
    }

    [Theory]
    [MemberData(nameof(JailScope.Targets), MemberType = typeof(JailScope))]
    public async Task Daemonize_with_a_new_pid_namespace_exits_0_and_the_pid_file_names_a_namespace_init_that_ignores_sigterm(string target)
    {
        RequireRoot();
        await using var jail = new JailScope(target);

        await using var jailer = FakeProcess.StartProgram(jail.Jailer, jail.Args(JailUid, JailGid, "--daemonize", "--new-pid-ns"));
        Assert.Equal(0, await jailer.WaitExitAsync(Within, Ct));
        var pid = await jail.WaitForPidFileAsync(Within, Ct);

        Assert.NotNull(pid);
        Assert.NotEqual(jailer.Pid, pid);
        AssertEntry(jail.PidFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, 0, 0);
        Assert.Matches($@"\nNSpid:\t{pid}\t1\n", await File.ReadAllTextAsync($"/proc/{pid}/status", Ct));
        Assert.Equal("/dev/null", new FileInfo($"/proc/{pid}/fd/2").LinkTarget);
        await WaitForApiAsync(jail.ApiSocket);

        _ = NativeMethods.kill(pid.Value, NativeMethods.SIGTERM);
        // Still serving after SIGTERM: the kernel dropped it (a namespace's init without a handler of its own).
        await WaitForApiAsync(jail.ApiSocket);
        Assert.True(JailScope.IsAlive(pid.Value));

        _ = NativeMethods.kill(pid.Value, 1);
        var deadline = DateTime.UtcNow + Within;
        while (JailScope.IsAlive(pid.Value) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5, Ct);
        }

        Assert.False(JailScope.IsAlive(pid.Value), "SIGHUP ends a jailed Firecracker");
    }

    [Theory]
    [MemberData(nameof(JailScope.Targets), MemberType = typeof(JailScope))]
    public async Task A_second_run_over_a_leftover_tree_fails_at_the_tun_device(string target)
    {
        RequireRoot();
        await using var jail = new JailScope(target);
        await using (var first = FakeProcess.StartProgram(jail.Jailer, jail.Args(JailUid, JailGid, "--daemonize", "--new-pid-ns")))
        {
            Assert.Equal(0, await first.WaitExitAsync(Within, Ct));
        }

        var pid = await jail.WaitForPidFileAsync(Within, Ct);
        _ = NativeMethods.kill(pid!.Value, NativeMethods.SIGKILL);

        await using var second = FakeProcess.StartProgram(jail.Jailer, jail.Args(JailUid, JailGid));

        Assert.Equal(1, await second.WaitExitAsync(Within, Ct));
        Assert.Contains("Failed to create /dev/net/tun via mknod inside the jail: File exists (os error 17)\n", second.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(JailScope.Targets), MemberType = typeof(JailScope))]
    public async Task The_jailed_process_joins_the_given_network_namespace(string target)
    {
        RequireRoot();
        Assert.SkipUnless(File.Exists("/usr/sbin/ip") || File.Exists("/sbin/ip") || File.Exists("/usr/bin/ip"), "needs ip(8) (iproute2) to make a network namespace");
        await using var jail = new JailScope(target);
        var name = "kiln-" + jail.Id[5..];
        Assert.Equal(0, await RunAsync("ip", "netns", "add", name));
        try
        {
            var nsPath = "/var/run/netns/" + name;
            await using var jailer = FakeProcess.StartProgram(jail.Jailer, jail.Args(JailUid, JailGid, "--netns", nsPath), jail.ApiSocket);
            Assert.True(await jailer.WaitForApiAsync(Within, Ct), jailer.Output);

            Assert.Equal(NativeMethods.Inode(nsPath), NativeMethods.Inode($"/proc/{jailer.Pid}/ns/net"));
            Assert.NotEqual(NativeMethods.Inode("/proc/self/ns/net"), NativeMethods.Inode($"/proc/{jailer.Pid}/ns/net"));
        }
        finally
        {
            await RunAsync("ip", "netns", "del", name);
        }
    }

    [Theory]
    [MemberData(nameof(JailScope.Targets), MemberType = typeof(JailScope))]
    public async Task Cgroup_version_2_is_used_as_this_machine_has_it(string target)
    {
        RequireRoot();
        var unified = JailScope.CgroupMounts().FirstOrDefault(m => File.Exists(Path.Combine(m, "cgroup.controllers")));
        Assert.SkipWhen(unified is null, "this machine has no cgroup2 hierarchy");
        await using var jail = new JailScope(target);
        var controllers = (await File.ReadAllTextAsync(Path.Combine(unified!, "cgroup.controllers"), Ct)).Split(' ', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

        await using var jailer = FakeProcess.StartProgram(jail.Jailer, jail.Args(JailUid, JailGid, "--cgroup-version", "2", "--cgroup", "cpu.max=50000 100000"), jail.ApiSocket);

        if (!controllers.Contains("cpu"))
        {
            // A hybrid machine: the unified hierarchy exists but the cpu controller is bound to v1.
            Assert.Equal(1, await jailer.WaitExitAsync(Within, Ct));
            Assert.Contains("Controller cpu is unavailable\n", jailer.Output, StringComparison.Ordinal);
            Assert.Contains("Error: CgroupControllerUnavailable(\"cpu\")\n", jailer.Output, StringComparison.Ordinal);
            return;
        }

        Assert.True(await jailer.WaitForApiAsync(Within, Ct), jailer.Output);
        Assert.Equal("50000 100000", (await File.ReadAllTextAsync(Path.Combine(unified!, jail.ParentCgroup, jail.Id, "cpu.max"), Ct)).Trim());
        Assert.Contains($"0::/{jail.ParentCgroup}/{jail.Id}\n", await File.ReadAllTextAsync($"/proc/{jailer.Pid}/cgroup", Ct), StringComparison.Ordinal);
    }

    private static string? CgroupV1(string controller) =>
        JailScope.CgroupMounts().FirstOrDefault(m => Path.GetFileName(m) == controller && !File.Exists(Path.Combine(m, "cgroup.controllers")));

    private static void AssertEntry(string path, UnixFileMode mode, uint uid, uint gid)
    {
        Assert.Equal(mode, File.GetUnixFileMode(path));
        Assert.Equal((uid, gid), NativeMethods.Owner(path));
    }

    private static async Task WaitForApiAsync(string socket)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            try
            {
                using var client = await ApiClient.ConnectAsync(socket, Ct);
                Assert.Equal(200, (await client.SendAsync("GET", "/", null, Ct)).Status);
                return;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(5, Ct);
            }
        }
    }

    private static async Task<int> RunAsync(string tool, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(tool) { UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        await p.WaitForExitAsync(Ct);
        return p.ExitCode;
    }
}
