// A VMM under the jailer, for real (root): fake-jailer and the stand-in, or KILN_JAILER + KILN_FIRECRACKER.
using Kiln.Host;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Vmm;

public sealed class JailedVmmTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> BadSettings => new()
    {
        { "uid 0", "Uid" },
        { "uid unknown", "Uid" },
        { "gid unknown", "Gid" },
        { "base not a directory", "ChrootBaseDirectory" },
        { "cpu quota 0", "CpuQuota" },
        { "cpu quota above the machine", "CpuQuota" },
        { "memory limit 1 byte", "MemoryLimitBytes" },
        { "open files 1", "OpenFilesLimit" },
        { "id with a space", "Id" },
        { "id of 70 characters", "Id" },
        { "missing netns", "NetworkNamespacePath" },
        { "hard link across file systems", "FileExposure" },
        { "parent cgroup with ..", "ParentCgroup" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task Bad_jail_settings_are_refused_before_anything_starts(string what, string property)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        var settings = scope.Settings(withLimits: false);
        var options = scope.Options(settings);
        options = what switch
        {
            "uid 0" => options with { Jail = settings with { Uid = 0 } },
            "uid unknown" => options with { Jail = settings with { Uid = 99999 } },
            "gid unknown" => options with { Jail = settings with { Gid = 99999 } },
            "base not a directory" => options with { Jail = settings with { ChrootBaseDirectory = scope.File("plain") } },
            "cpu quota 0" => options with { Jail = settings with { CpuQuota = 0 } },
            "cpu quota above the machine" => options with { Jail = settings with { CpuQuota = Environment.ProcessorCount + 1 } },
            "memory limit 1 byte" => options with { Jail = settings with { MemoryLimitBytes = 1 } },
            "open files 1" => options with { Jail = settings with { OpenFilesLimit = 1 } },
            "id with a space" => options with { Id = "bad id" },
            "id of 70 characters" => options with { Id = new string('a', 70) },
            "missing netns" => options with { Jail = settings with { NetworkNamespacePath = "/var/run/netns/kiln-none" } },
            "hard link across file systems" => options with { Files = [new JailFile(ShmFile(), "/rootfs.ext4", ReadOnly: false)] },
            "parent cgroup with .." => options with { Jail = settings with { ParentCgroup = "a/../b" } },
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };

        var e = await Assert.ThrowsAsync<JailConfigurationException>(() => JailedVmm.LaunchAsync(options, TimeProvider.System, Ct));

        Assert.Equal(property, e.PropertyName);
        Assert.Equal([scope.Files], Directory.EnumerateDirectories(scope.Base));
        Assert.Empty(scope.LeftoverCgroups());
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task A_jailed_vmm_runs_as_the_jail_user_in_its_cgroup_with_its_files_and_cleans_up_to_nothing(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        var kernel = scope.File("vmlinux");
        var rootfs = scope.File("rootfs.ext4");
        var settings = scope.Settings();

        await using var vmm = await JailedVmm.LaunchAsync(scope.Options(settings,
            new JailFile(kernel, "/vmlinux", ReadOnly: true), new JailFile(rootfs, "/rootfs.ext4", ReadOnly: false)), TimeProvider.System, Ct);
        var info = await JailTestScope.WaitForApiAsync(vmm);

        Assert.Equal(scope.Id, info.Id);
        Assert.Equal(Path.Combine(scope.Base, Path.GetFileName(scope.FirecrackerPath), scope.Id, "root"), vmm.Layout.Root);
        Assert.Equal(vmm.Layout.ExecutableInJail, ProcFs.TryGetExecutable(vmm.Pid));
        var status = await File.ReadAllTextAsync($"/proc/{vmm.Pid}/status", Ct);
        Assert.Contains($"\nUid:\t{JailTestScope.Uid}\t", status, StringComparison.Ordinal);
        Assert.Contains($"\nGid:\t{JailTestScope.Gid}\t", status, StringComparison.Ordinal);
        // An owned VMM's new PID namespace is Kiln's (whose init dies with the owner): the VMM is in it, not its init,
        // and the jailer, not asked for --new-pid-ns there, writes no PID file.
        Assert.Matches($@"\nNSpid:\t{vmm.Pid}\t\d+\n", status);
        Assert.DoesNotMatch(@"\nNSpid:\t\d+\t1\n", status);
        Assert.False(vmm.Record.NewPidNamespace, "not a namespace's init: SIGTERM stops it");
        Assert.False(File.Exists(vmm.Layout.PidFile));
        // The files, as the VMM sees them: through its own root.
        Assert.Equal("data", await File.ReadAllTextAsync($"/proc/{vmm.Pid}/root/vmlinux", Ct));
        Assert.Equal((JailTestScope.Uid, JailTestScope.Gid), Owner(Path.Combine(vmm.Layout.Root, "rootfs.ext4")));
        Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(kernel) & (UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite));
        Assert.Equal(UnixFileMode.UserWrite, File.GetUnixFileMode(rootfs) & UnixFileMode.UserWrite);
        foreach (var cgroup in vmm.Record.Cgroups)
        {
            Assert.Equal(cgroup.Requested, cgroup.ReadBack());
            Assert.Contains(vmm.Pid, Cgroups.Processes(cgroup.Directory));
        }

        await TerminateAsync(vmm);
        await vmm.CleanupAsync(TimeProvider.System, Ct);

        Assert.False(Directory.Exists(vmm.Layout.InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
        Assert.True(File.Exists(kernel) && File.Exists(rootfs), "the originals stay");
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task Without_a_pid_namespace_a_detached_jailer_becomes_the_vmm_and_sigterm_stops_it(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);

        await using var vmm = await JailedVmm.LaunchAsync(scope.Options(scope.Settings(withLimits: false) with { NewPidNamespace = false }) with { Detached = true },
            TimeProvider.System, Ct);
        await JailTestScope.WaitForApiAsync(vmm);

        Assert.True(vmm.Process.IsChild);
        await TerminateAsync(vmm);
        Assert.Equal(new VmmProcessState.Crashed(15), vmm.Process.State);
        await vmm.CleanupAsync(TimeProvider.System, Ct);
        Assert.False(Directory.Exists(vmm.Layout.InstanceDirectory));
    }

    [Theory]
    [InlineData("fake", false, false)]
    [InlineData("fake", true, false)]
    [InlineData("fake", false, true)]
    [InlineData("fake", true, true)]
    [InlineData("real", false, false)]
    [InlineData("real", true, true)]
    public async Task A_jailer_whose_exec_fails_fails_the_launch_when_it_exits_not_at_the_ready_deadline(string target, bool newPidNamespace, bool detached)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        var settings = scope.Settings(withLimits: false) with { NewPidNamespace = newPidNamespace };
        // Executable, but no program: execve fails (ENOEXEC) and the jailer exits (with --new-pid-ns after writing
        // the PID file, naming a process that is gone by then).
        var notAProgram = scope.File("not-firecracker", "data");
        File.SetUnixFileMode(notAProgram, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var options = scope.Options(settings) with { FirecrackerPath = notAProgram, ReadyTimeout = TimeSpan.FromMinutes(2), Detached = detached };

        var e = await Assert.ThrowsAsync<JailStartException>(() => JailedVmm.LaunchAsync(options, TimeProvider.System, Ct));

        Assert.Contains("exited without starting the VMM", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(JailLayout.For(settings, notAProgram, scope.Id).InstanceDirectory));
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task An_owned_jailed_vmm_dies_with_its_owner_even_though_the_jailer_dropped_its_death_signal(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        await using var vmm = await JailedVmm.LaunchAsync(scope.Options(scope.Settings()), TimeProvider.System, Ct);
        await JailTestScope.WaitForApiAsync(vmm);
        // VMM ← its namespace's init (root, unshare) ← the launcher (unshare, with the owner thread's death signal).
        var init = ParentOf(vmm.Pid);
        var launcher = ParentOf(init);
        var initIdentity = ProcFs.TryGetIdentity(init)!;
        Assert.Matches(@"\nNSpid:\t\d+\t1\n", await File.ReadAllTextAsync($"/proc/{init}/status", Ct));
        Assert.Contains("\nUid:\t0\t0\t0\t0\n", await File.ReadAllTextAsync($"/proc/{init}/status", Ct), StringComparison.Ordinal);

        // What the owner thread's death does to the launcher (PR_SET_PDEATHSIG, set through setpriv): SIGKILL it.
        Assert.Equal(0, Kiln.Interop.LibC.Kill(launcher, Kiln.Interop.LibC.SIGKILL));

        await vmm.Process.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        if (VmmProcess.TryAttach(initIdentity, "/dev/null") is { } dying)
        {
            await using (dying)
                await dying.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }
        await vmm.CleanupAsync(TimeProvider.System, Ct);
        Assert.False(Directory.Exists(vmm.Layout.InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task A_live_jail_whose_vmm_is_in_kilns_pid_namespace_is_refused_to_a_second_launch(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        var options = scope.Options(scope.Settings(withLimits: false));
        await using var first = await JailedVmm.LaunchAsync(options, TimeProvider.System, Ct);
        await JailTestScope.WaitForApiAsync(first);

        // No PID file names it (the jailer was not asked for --new-pid-ns): found by its root and executable.
        var refused = await Assert.ThrowsAsync<JailInUseException>(() => JailedVmm.LaunchAsync(options, TimeProvider.System, Ct));

        Assert.Equal(first.Pid, refused.Pid);
        Assert.False(first.Process.HasExited);
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task A_jailer_failure_after_the_cgroups_rolls_back_the_tree_the_files_and_the_cgroups(string target)
    {
        JailTestScope.RequireRoot();
        Assert.SkipUnless(Cgroups.HasController(CgroupVersion.V1, "cpuset"), "needs a v1 cpuset hierarchy");
        await using var scope = new JailTestScope(target);
        var rootfs = scope.File("rootfs.ext4");
        // A CPU this machine does not have: the jailer makes the cgroup, then fails to write it.
        var settings = scope.Settings() with { Cpuset = "63" };

        var e = await Assert.ThrowsAsync<JailStartException>(() =>
            JailedVmm.LaunchAsync(scope.Options(settings, new JailFile(rootfs, "/rootfs.ext4", ReadOnly: false)), TimeProvider.System, Ct));

        Assert.Contains("cpuset.cpus", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(JailLayout.For(settings, scope.FirecrackerPath, scope.Id).InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.True(File.Exists(rootfs));
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task A_stale_tree_from_a_crashed_owner_is_cleaned_but_a_live_one_is_refused(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        var options = scope.Options(scope.Settings()) with { Detached = true };
        var first = await JailedVmm.LaunchAsync(options, TimeProvider.System, Ct);
        await JailTestScope.WaitForApiAsync(first);

        var refused = await Assert.ThrowsAsync<JailInUseException>(() => JailedVmm.LaunchAsync(options, TimeProvider.System, Ct));
        Assert.Equal(first.Pid, refused.Pid);
        Assert.False(first.Process.HasExited);

        // The owner "crashes": its VMM dies, nobody cleans the jail.
        await first.Process.KillAsync(Ct);
        await first.DisposeAsync();
        Assert.True(Directory.Exists(first.Layout.InstanceDirectory));

        await using var second = await JailedVmm.LaunchAsync(options, TimeProvider.System, Ct);
        await JailTestScope.WaitForApiAsync(second);
        Assert.NotEqual(first.Pid, second.Pid);
        await TerminateAsync(second);
        await second.CleanupAsync(TimeProvider.System, Ct);
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task A_detached_jailed_vmm_is_re_attached_from_its_record_stopped_and_cleaned(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        JailRecord record;
        await using (var launched = await JailedVmm.LaunchAsync(scope.Options(scope.Settings()) with { Detached = true }, TimeProvider.System, Ct))
        {
            await JailTestScope.WaitForApiAsync(launched);
            record = launched.Record;
        }

        await using var attached = JailedVmm.TryAttach(record, Path.Combine(scope.Files, "console.log"));

        Assert.NotNull(attached);
        Assert.False(attached.Process.IsChild);
        await TerminateAsync(attached);
        await attached.CleanupAsync(TimeProvider.System, Ct);
        Assert.False(Directory.Exists(record.Layout.InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Null(JailedVmm.TryAttach(record, "/dev/null"));
    }

    [Theory]
    [MemberData(nameof(JailTestScope.Targets), MemberType = typeof(JailTestScope))]
    public async Task Bind_mounted_read_only_files_stay_read_only_and_hot_plugged_files_come_and_go(string target)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope(target);
        var kernel = scope.File("vmlinux");
        var settings = scope.Settings(withLimits: false) with { FileExposure = JailFileExposure.BindMount };

        await using var vmm = await JailedVmm.LaunchAsync(scope.Options(settings, new JailFile(kernel, "/vmlinux", ReadOnly: true)), TimeProvider.System, Ct);
        await JailTestScope.WaitForApiAsync(vmm);

        Assert.Contains(vmm.Layout.OnHost("/vmlinux"), scope.LeftoverMounts());
        Assert.ThrowsAny<IOException>(() => File.AppendAllText(vmm.Layout.OnHost("/vmlinux"), "x"));
        var data = scope.File("data.img", "hot");
        var plugged = vmm.ExposeFile(new JailFile(data, "/drives/data.img", ReadOnly: false), JailFileExposure.HardLink);
        Assert.Equal("hot", await File.ReadAllTextAsync($"/proc/{vmm.Pid}/root/drives/data.img", Ct));
        vmm.WithdrawFile(plugged);
        Assert.False(File.Exists($"/proc/{vmm.Pid}/root/drives/data.img"));

        await TerminateAsync(vmm);
        await vmm.CleanupAsync(TimeProvider.System, Ct);
        Assert.Empty(scope.LeftoverMounts());
        Assert.Equal("data", await File.ReadAllTextAsync(kernel, Ct));
    }

    /// <summary>Ends the VMM the way a shutdown plan's Terminate does (SIGHUP for a PID namespace's init), without SIGKILL.</summary>
    private static async Task TerminateAsync(JailedVmm vmm)
    {
        Assert.True(vmm.Process.TrySignal(vmm.Record.NewPidNamespace ? 1 : 15));
        await vmm.Process.Exited.WaitAsync(TimeSpan.FromSeconds(20), Ct);
    }

    private static int ParentOf(int pid) => ProcFs.ParseParentPid(File.ReadAllText($"/proc/{pid}/stat")) ?? throw new InvalidOperationException($"{pid} is gone");

    private static string ShmFile()
    {
        var path = Path.Combine("/dev/shm", "kiln-" + Guid.NewGuid().ToString("N")[..8]);
        File.WriteAllText(path, "x");
        return path;
    }

    private static (uint, uint) Owner(string path) => Kiln.Interop.LibC.Stat(path) is { } st ? (st.Uid, st.Gid) : throw new FileNotFoundException(path);
}
