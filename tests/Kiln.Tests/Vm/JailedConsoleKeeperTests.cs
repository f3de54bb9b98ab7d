// A detached jailed microVM's console keeper, at the Vm layer, on fake-jailer + the stand-in (its pretend guest echoes
// serial input onto the console: a byte per character, then "kiln-fake-guest: serial input: LINE"): the jailer's stdio
// is the keeper's FIFO and console.in, firecracker inherits them, the keeper watches the real VMM and ends with it; a
// jailed restore gets one too; a jailer that fails early still has its words in the typed error; a daemonizing jail
// with a keeper is refused; a SIGKILLed keeper is restarted on request and a stale ready file does not pass for the new
// one. The Kiln.TestOwner program doubles as the keeper (as `kiln console-keeper` does for the CLI).
using System.Text;
using Kiln.Host;
using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vm.Templates;
using Kiln.Vmm;

namespace Kiln.Tests.Vm;

public sealed class JailedConsoleKeeperTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The test assembly's keeper program.</summary>
    internal static ConsoleKeeperCommand Keeper => new(Path.Combine(AppContext.BaseDirectory, "Kiln.TestOwner"), ["console-keeper"]);

    private static (MachineDescription, MicrovmOptions) DetachedJailed(JailTestScope scope, TempRoot root, long limit = 4096)
    {
        var description = MicrovmFixture.Description(root) with { Jail = scope.Settings(withLimits: false) };
        description = description with
        {
            BootSource = description.BootSource with { KernelImagePath = scope.File("vmlinux") },
            Devices =
            [
                new MachineDrive(new Kiln.Api.Drive { DriveId = "rootfs", PathOnHost = scope.File("rootfs.ext4"), IsRootDevice = true, IsReadOnly = true }),
            ],
        };
        var options = MicrovmFixture.Options(root) with
        {
            FirecrackerPath = scope.FirecrackerPath,
            Id = scope.Id,
            WorkingDirectory = null,
            Ownership = VmmOwnership.Detached,
            ConsoleKeeper = Keeper,
            ConsoleInputPath = root.Combine("console.in"),
            ConsoleRotation = OutputRotation.Default with { MaxFileBytes = limit },
        };
        return (description, options);
    }

    internal static string ReadShared(string path) =>
        File.Exists(path) ? new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete)).ReadToEnd() : "";

    /// <summary>Types lines into the guest's serial input FIFO directly (no keeper, no attach in between).</summary>
    internal static async Task TypeAsync(string inputFifo, IEnumerable<string> lines)
    {
        await using var input = new FileStream(inputFifo, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
        foreach (var line in lines)
            await input.WriteAsync(Encoding.UTF8.GetBytes(line + "\r"), Ct);
    }

    /// <summary>Both console files, the older first.</summary>
    internal static string BothLogs(string console) => ReadShared(console + ".1") + ReadShared(console);

    internal static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(20, Ct);
        }
    }

    // With --new-pid-ns the jailer clones the VMM (the PID file names it) and exits; without, it execs firecracker in
    // its own process: either way the VMM inherits the jailer's stdio and the keeper watches the VMM.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_detached_jailed_microvm_writes_its_console_through_a_keeper_that_bounds_it_serves_attach_and_ends_with_it(bool newPidNamespace)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = DetachedJailed(scope, root);
        description = description with { Jail = description.Jail! with { NewPidNamespace = newPidNamespace } };

        await using var vm = await Microvm.BootAsync(description, options, Ct);
        var keeper = Assert.IsType<ProcessIdentity>(vm.ConsoleKeeper);
        Assert.True(ConsoleKeeper.IsRunning(keeper));
        // The keeper watches the real VMM, the jail's firecracker, not the jailer that started it.
        var keeperArgs = ProcFs.TryGetCommandLine(keeper.Pid)!;
        Assert.Equal(vm.Jail!.Record.Identity.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), keeperArgs[keeperArgs.ToList().IndexOf("--vmm-pid") + 1]);
        Assert.True(Kiln.Interop.FileNodes.IsFifo(ConsoleKeeper.FifoPath(options.ConsolePath)));

        // About 60 KiB through a 4 KiB bound.
        await TypeAsync(options.ConsoleInputPath!, Enumerable.Range(0, 250).Select(i => $"line {i:D3} {new string('x', 100)}"));
        await UntilAsync(() => BothLogs(options.ConsolePath).Contains("serial input: line 249", StringComparison.Ordinal), "the last answer never reached the log");
        Assert.InRange(new FileInfo(options.ConsolePath).Length, 0, 4096);
        Assert.InRange(new FileInfo(options.ConsolePath + ".1").Length, 1, 4096);
        Assert.False(File.Exists(options.ConsolePath + ".2"));

        // Attach through the keeper: what is sent reaches the guest, its answer comes back.
        await using (var attach = await ConsoleKeeper.ConnectAsync(options.ConsolePath, Ct))
        {
            Assert.NotNull(attach);
            await attach.WriteAsync("via keeper\r"u8.ToArray(), Ct);
            var seen = new StringBuilder();
            var buffer = new byte[4096];
            while (!seen.ToString().Contains("serial input: via keeper", StringComparison.Ordinal))
            {
                var n = await attach.ReadAsync(buffer, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct);
                Assert.True(n > 0, "the keeper closed the attach stream: " + seen);
                seen.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }

        await vm.StopAsync(cancellationToken: Ct);
        Assert.False(ConsoleKeeper.IsRunning(keeper), "the keeper outlived its jailed VMM");
        Assert.False(File.Exists(ConsoleKeeper.FifoPath(options.ConsolePath)));
        Assert.False(File.Exists(ConsoleKeeper.ReadyPath(options.ConsolePath)));
        await vm.CleanupJailAsync(Ct);
        Assert.False(Directory.Exists(vm.Jail.Layout.InstanceDirectory));
    }

    [Fact]
    public async Task A_sigkilled_keeper_of_a_jailed_microvm_is_restarted_on_request_and_a_stale_ready_file_does_not_pass_for_the_new_one()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = DetachedJailed(scope, root);
        await using var vm = await Microvm.BootAsync(description, options, Ct);
        var first = vm.ConsoleKeeper!;
        Assert.False(await vm.RestartConsoleKeeperAsync(Ct)); // it runs: nothing to do

        using (var pidFd = Kiln.Interop.PidFd.TryOpen(first.Pid)!)
        {
            pidFd.TrySignal(Kiln.Interop.LibC.SIGKILL);
            await pidFd.WaitForExitAsync(Ct);
        }
        // What it leaves: its ready file (naming the dead keeper), its socket file, and the FIFO the VMM still holds.
        Assert.True(File.Exists(ConsoleKeeper.ReadyPath(options.ConsolePath)));
        Assert.Null(await ConsoleKeeper.ConnectAsync(options.ConsolePath, Ct));
        // The guest writes while nobody reads: the FIFO keeps what fits.
        await TypeAsync(options.ConsoleInputPath!, ["while the keeper was dead"]);

        Assert.True(await vm.RestartConsoleKeeperAsync(Ct));

        var second = vm.ConsoleKeeper!;
        Assert.NotEqual(first.Pid, second.Pid);
        Assert.True(ConsoleKeeper.IsRunning(second));
        Assert.Equal(second.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), await File.ReadAllTextAsync(ConsoleKeeper.ReadyPath(options.ConsolePath), Ct));
        await UntilAsync(() => BothLogs(options.ConsolePath).Contains("serial input: while the keeper was dead", StringComparison.Ordinal),
            "what the guest wrote while no keeper ran never reached the log");
        await TypeAsync(options.ConsoleInputPath!, Enumerable.Range(0, 100).Select(i => $"after {i:D3} {new string('z', 100)}"));
        await UntilAsync(() => BothLogs(options.ConsolePath).Contains("serial input: after 099", StringComparison.Ordinal), "the new keeper wrote nothing");
        Assert.InRange(new FileInfo(options.ConsolePath).Length, 0, 4096);
        await using (var attach = await ConsoleKeeper.ConnectAsync(options.ConsolePath, Ct))
            Assert.NotNull(attach);

        await vm.StopAsync(cancellationToken: Ct);
        Assert.False(ConsoleKeeper.IsRunning(second), "the restarted keeper outlived its VMM");
        await vm.CleanupJailAsync(Ct);
    }

    [Fact]
    public async Task A_keeper_whose_fifo_is_gone_cannot_be_restarted_and_says_so_in_a_typed_error()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = DetachedJailed(scope, root);
        await using var vm = await Microvm.BootAsync(description, options, Ct);
        using (var pidFd = Kiln.Interop.PidFd.TryOpen(vm.ConsoleKeeper!.Pid)!)
        {
            pidFd.TrySignal(Kiln.Interop.LibC.SIGKILL);
            await pidFd.WaitForExitAsync(Ct);
        }
        File.Delete(ConsoleKeeper.FifoPath(options.ConsolePath));

        var e = await Assert.ThrowsAsync<ConsoleKeeperRestartException>(() => vm.RestartConsoleKeeperAsync(Ct));

        Assert.Contains("FIFO", e.Message, StringComparison.Ordinal);
        Assert.Equal(MicrovmState.Running, vm.State); // the VMM is not harmed
        await vm.StopAsync(cancellationToken: Ct);
        await vm.CleanupJailAsync(Ct);
    }

    [Fact]
    public async Task A_jailer_that_fails_early_has_its_own_error_in_the_typed_boot_failure_and_leaves_no_keeper_files()
    {
        JailTestScope.RequireRoot();
        Assert.SkipUnless(Cgroups.HasController(CgroupVersion.V1, "cpuset"), "needs a v1 cpuset hierarchy");
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = DetachedJailed(scope, root);
        // No such CPU: the jailer refuses it writing the cgroup, before it execs firecracker.
        description = description with { Jail = description.Jail! with { Cpuset = "63" } };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.BootAsync(description, options, Ct));

        Assert.Equal("spawn", e.Step);
        var jailFailure = Assert.IsType<JailStartException>(e.InnerException);
        // The jailer's words went to the keeper's FIFO (its stderr), and from there into the error.
        Assert.Contains("cpuset", jailFailure.OutputTail, StringComparison.Ordinal);
        Assert.Contains("cpuset", e.OutputTail, StringComparison.Ordinal);
        Assert.False(File.Exists(ConsoleKeeper.FifoPath(options.ConsolePath)));
        Assert.False(File.Exists(ConsoleKeeper.ReadyPath(options.ConsolePath)));
        Assert.False(File.Exists(options.ConsoleInputPath));
        Assert.Empty(scope.LeftoverCgroups());
    }

    [Fact]
    public async Task A_daemonizing_jail_with_a_console_keeper_is_refused_before_anything_starts()
    {
        using var root = new TempRoot();
        var scope = new JailTestScope();
        await using var _ = scope;
        var (description, options) = DetachedJailed(scope, root);
        description = description with { Jail = description.Jail! with { Daemonize = true } };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => Microvm.BootAsync(description, options, Ct));

        Assert.Contains("Daemonize", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(options.ConsolePath));
        Assert.False(Directory.Exists(JailLayout.For(description.Jail!, options.FirecrackerPath, scope.Id).InstanceDirectory));
    }

    [Fact]
    public async Task A_detached_jailed_restore_gets_a_keeper_too_and_its_guest_answers_through_it()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        await using var source = await Microvm.BootAsync(SnapshotFixture.DescriptionWithVsock(root), MicrovmFixture.Options(root), Ct);
        var template = await new TemplateStore(root.Combine("templates")).CreateAsync("base", source, Ct);
        var clone = new TemplateCloneOptions
        {
            Microvm = SnapshotFixture.OptionsIn(root, "c0") with
            {
                FirecrackerPath = scope.FirecrackerPath,
                Id = scope.Id + "-0",
                WorkingDirectory = null,
                Ownership = VmmOwnership.Detached,
                ConsoleKeeper = Keeper,
                ConsoleInputPath = root.Combine("c0.in"),
                ConsoleRotation = OutputRotation.Default with { MaxFileBytes = 4096 },
            },
            Directory = root.Combine("c0"),
            Jail = scope.Settings(withLimits: false),
        };

        var vm = await template.StartCloneAsync(clone, Ct);
        try
        {
            Assert.True(ConsoleKeeper.IsRunning(vm.ConsoleKeeper!));
            await TypeAsync(clone.Microvm.ConsoleInputPath!, ["restored and kept"]);
            await UntilAsync(() => BothLogs(vm.Options.ConsolePath).Contains("serial input: restored and kept", StringComparison.Ordinal),
                "the restored guest's answer never reached the keeper's log");
            await vm.StopAsync(cancellationToken: Ct);
            Assert.False(ConsoleKeeper.IsRunning(vm.ConsoleKeeper!));
        }
        finally
        {
            await vm.DisposeAsync();
        }
        await vm.CleanupJailAsync(Ct);
        template.RemoveCloneFiles(clone);
    }
}
