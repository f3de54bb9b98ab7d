// A microVM booted under the jailer (fake-jailer + the stand-in: these lean on its pretend guest and fault knobs; the
// real jailer's VM tier is JailedSandboxTests): the files, the vsock socket and a --config-file document are seen
// inside the chroot, the default stop works, and clean-up — after a stop or a failed boot at any step — leaves no
// tree, mount, cgroup or process.
using Kiln.Host;
using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vmm;
using Microsoft.Extensions.Logging;

namespace Kiln.Tests.Vm;

public sealed class JailedMicrovmTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static (MachineDescription, MicrovmOptions) Jailed(JailTestScope scope, TempRoot root, Dictionary<string, string>? knobs = null)
    {
        var description = MicrovmFixture.Description(root) with { Jail = scope.Settings() };
        // The guest files live on the chroot base's file system: hard links are the default.
        description = description with
        {
            BootSource = description.BootSource with { KernelImagePath = scope.File("vmlinux") },
            Devices =
            [
                new MachineDrive(new Kiln.Api.Drive { DriveId = "rootfs", PathOnHost = scope.File("rootfs.ext4"), IsRootDevice = true, IsReadOnly = true }),
                new MachineDrive(new Kiln.Api.Drive { DriveId = "data", PathOnHost = scope.File("data.img"), IsRootDevice = false, IsReadOnly = false }),
            ],
        };
        var options = MicrovmFixture.Options(root, knobs) with { FirecrackerPath = scope.FirecrackerPath, Id = scope.Id, WorkingDirectory = null };
        return (description, options);
    }

    [Fact]
    public async Task A_jailed_microvm_boots_with_its_files_inside_the_chroot_stops_by_plan_and_cleans_up()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = Jailed(scope, root);

        await using var vm = await Microvm.BootAsync(description, options, Ct);

        Assert.Equal(MicrovmState.Running, vm.State);
        Assert.NotNull(vm.Jail);
        Assert.Equal(vm.Jail.ApiSocketPath, vm.Options.SocketPath);
        var config = await vm.Client.GetExportVmConfigAsync(Ct);
        Assert.Equal("/boot/kernel", config.BootSource!.KernelImagePath);
        Assert.Contains(config.Drives!, d => d.DriveId == "data" && d.PathOnHost == "/drives/data");
        Assert.Equal("data", await File.ReadAllTextAsync($"/proc/{vm.Pid}/root/drives/data", Ct));
        Assert.True(File.Exists(vm.Jail.Layout.OnHost("/firecracker.log")));

        // Hot-plug into the jail: the file appears at the path Firecracker is given.
        var extra = scope.File("extra.img", "extra");
        Assert.Equal("/hotplug/extra", vm.ExposeForHotplug(extra, "extra", readOnly: false));
        Assert.Equal("extra", await File.ReadAllTextAsync($"/proc/{vm.Pid}/root/hotplug/extra", Ct));
        vm.WithdrawHotplug("extra");
        Assert.False(File.Exists(vm.Jail.Layout.OnHost("/hotplug/extra")));

        var outcome = await vm.StopAsync(cancellationToken: Ct);
        // The plan's terminate step ended it (SIGTERM: an owned VMM is no namespace's init, Kiln's namespace has one).
        Assert.Equal(ShutdownActionKind.Terminate, outcome.EndedBy);
        await vm.CleanupJailAsync(Ct);

        Assert.False(Directory.Exists(vm.Jail.Layout.InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
    }

    [Fact]
    public async Task A_jailed_microvm_publishes_its_metrics_through_a_fifo_inside_the_chroot_and_forwards_its_log()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        using var meter = new System.Diagnostics.Metrics.Meter("Kiln.Tests.JailedMetrics." + Guid.NewGuid().ToString("N"));
        using var recorder = new Kiln.Tests.Vmm.Telemetry.MeterRecorder(meter);
        var collector = new Microsoft.Extensions.Logging.Testing.FakeLogCollector();
        using var loggerFactory = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.AddProvider(new Microsoft.Extensions.Logging.Testing.FakeLoggerProvider(collector)));
        var (description, options) = Jailed(scope, root);
        options = options with { MetricsPath = root.Combine("metrics.fifo"), Meter = meter, LoggerFactory = loggerFactory };

        var vm = await Microvm.BootAsync(description, options, Ct);
        var jail = vm.Jail!;
        try
        {
            // Inside the chroot, the jail's own, named to Firecracker by the path it sees; nothing at the caller's path.
            var fifo = jail.Layout.OnHost("/metrics.fifo");
            Assert.Equal(fifo, vm.Options.MetricsPath);
            Assert.True(Kiln.Interop.FileNodes.IsFifo(fifo));
            Assert.Equal((JailTestScope.Uid, JailTestScope.Gid), Kiln.Interop.LibC.Stat(fifo) is { } st ? (st.Uid, st.Gid) : default);
            Assert.False(Path.Exists(root.Combine("metrics.fifo")));
            var commandLine = (await File.ReadAllTextAsync($"/proc/{vm.Pid}/cmdline", Ct)).Split('\0');
            Assert.Equal("/metrics.fifo", commandLine[Array.IndexOf(commandLine, "--metrics-path") + 1]);
            await vm.FlushMetricsAsync(Ct);
        }
        finally
        {
            await vm.DisposeAsync();
        }
        await vm.Telemetry.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await vm.CleanupJailAsync(Ct);

        // One line at InstanceStart, one for FlushMetrics, read from the host side of the chroot.
        Assert.Equal(2, vm.Metrics!.LinesPublished);
        Assert.Equal(2, recorder.Counter($"firecracker.put_api_requests.actions_count{{kiln.vm.id={scope.Id}}}"));
        Assert.Contains(collector.GetSnapshot(), r => r.Category == "Kiln.Firecracker"
            && r.Message.Contains("The API server received a Put request on \"/actions\"", StringComparison.Ordinal));
        Assert.False(Directory.Exists(jail.Layout.InstanceDirectory));
    }

    [Fact]
    public async Task A_jailed_microvm_boots_from_a_config_file_written_inside_its_chroot_with_the_paths_it_sees()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = Jailed(scope, root);
        options = options with { StartPath = MicrovmStartPath.ConfigFile };

        await using var vm = await Microvm.BootAsync(description, options, Ct);

        Assert.Equal(MicrovmState.Running, vm.State);
        var argv = File.ReadAllText($"/proc/{vm.Pid}/cmdline").Split('\0');
        Assert.Equal("/config.json", argv[Array.IndexOf(argv, "--config-file") + 1]);
        var config = await vm.Client.GetExportVmConfigAsync(Ct);
        Assert.Equal("/boot/kernel", config.BootSource!.KernelImagePath);
        Assert.Contains(config.Drives!, d => d.DriveId == "data" && d.PathOnHost == "/drives/data");
        var document = vm.Jail!.Layout.OnHost("/config.json");
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(document));
        Assert.Equal((JailTestScope.Uid, JailTestScope.Gid), Kiln.Interop.LibC.Stat(document) is { } st ? (st.Uid, st.Gid) : default);
        Assert.False(File.Exists(options.EffectiveConfigFilePath), "nothing written outside the jail");

        await vm.StopAsync(cancellationToken: Ct);
        await vm.CleanupJailAsync(Ct);
        Assert.False(Directory.Exists(vm.Jail.Layout.InstanceDirectory));
    }

    [Fact]
    public async Task A_jailed_microvms_vsock_is_dialed_at_the_callers_path_and_the_guest_reaches_a_listener_inside_the_jail()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = Jailed(scope, root);
        var uds = root.Combine("v.sock");
        description = description with { Devices = [.. description.Devices, new MachineVsock(new Kiln.Api.Vsock { GuestCid = 3, UdsPath = uds })] };

        await using var vm = await Microvm.BootAsync(description, options, Ct);

        // Firecracker was given a path inside its chroot; the caller's path leads there.
        Assert.Equal("/vsock.sock", (await vm.Client.GetExportVmConfigAsync(Ct)).Vsock!.UdsPath);
        Assert.Equal(vm.Jail!.Layout.OnHost("/vsock.sock"), new FileInfo(uds).LinkTarget);
        var dialer = new Kiln.Host.Vsock.VsockDialer(uds, new Kiln.Host.Vsock.VsockDialerOptions { ConnectTimeout = TimeSpan.FromSeconds(30) });
        await using var echo = await dialer.ConnectAsync(5000, Ct);
        await echo.WriteAsync("ping\n"u8.ToArray(), Ct);
        Assert.Equal("ping", await ReadLineAsync(echo));

        // The guest's connection to the host: the unprivileged VMM connects to <uds_path>_<port> inside its jail.
        using var listener = vm.ListenVsock(7000);
        Assert.StartsWith(vm.Jail.Layout.Root + "/", listener.Path, StringComparison.Ordinal);
        await using var control = await dialer.ConnectAsync(5100, Ct);
        var accept = listener.AcceptAsync(Ct);
        await control.WriteAsync("DIAL 7000\n"u8.ToArray(), Ct);
        Assert.Equal("OK", await ReadLineAsync(control));
        await using var fromGuest = await accept;
        await fromGuest.WriteAsync("hello\n"u8.ToArray(), Ct);
        Assert.Equal("hello", await ReadLineAsync(fromGuest));

        await vm.StopAsync(cancellationToken: Ct);
        await vm.CleanupJailAsync(Ct);
        Assert.False(Directory.Exists(vm.Jail.Layout.InstanceDirectory));
    }

    [Theory]
    [InlineData("boot-source", "PUT /boot-source=400:Injected fault")]
    [InlineData("drive-data", "PUT /drives/data=400:Injected fault")]
    [InlineData("instance-start", "PUT /actions=400:Injected fault")]
    public async Task A_jailed_boot_that_fails_at_a_step_removes_the_jail_entirely(string step, string fault)
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = Jailed(scope, root, new Dictionary<string, string> { ["FAKE_FC_FAIL"] = fault });

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.BootAsync(description, options, Ct));

        Assert.Equal(step, e.Step);
        Assert.Equal("Injected fault", e.FaultMessage);
        var layout = JailLayout.For(description.Jail!, options.FirecrackerPath, scope.Id);
        Assert.False(Directory.Exists(layout.InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
        Assert.Empty(ProcessScan.WithCommandLineContaining(scope.Id));
    }

    [Fact]
    public async Task A_jailed_boot_refused_by_the_jailer_fails_at_spawn_and_leaves_nothing()
    {
        JailTestScope.RequireRoot();
        Assert.SkipUnless(Cgroups.HasController(CgroupVersion.V1, "cpuset"), "needs a v1 cpuset hierarchy");
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = Jailed(scope, root);
        description = description with { Jail = description.Jail! with { Cpuset = "63" } };

        var e = await Assert.ThrowsAsync<MicrovmBootException>(() => Microvm.BootAsync(description, options, Ct));

        Assert.Equal("spawn", e.Step);
        Assert.IsType<JailStartException>(e.InnerException);
        Assert.False(Directory.Exists(JailLayout.For(description.Jail!, options.FirecrackerPath, scope.Id).InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
    }

    [Fact]
    public async Task A_detached_jailed_microvm_is_re_attached_from_its_record_and_stopped()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = Jailed(scope, root);
        options = options with { Ownership = VmmOwnership.Detached };
        JailRecord record;
        await using (var vm = await Microvm.BootAsync(description, options, Ct))
            record = vm.Jail!.Record;

        await using var attached = Microvm.TryAttachJailed(record, options, MicrovmState.Running);

        Assert.NotNull(attached);
        Assert.Equal(Kiln.Api.InstanceState.Running, (await attached.Client.DescribeInstanceAsync(Ct)).State);
        Assert.Equal(ShutdownActionKind.Terminate, (await attached.StopAsync(cancellationToken: Ct)).EndedBy);
        await attached.CleanupJailAsync(Ct);
        Assert.False(Directory.Exists(record.Layout.InstanceDirectory));
    }

    [Fact]
    public async Task A_jailed_microvm_given_a_network_namespace_runs_in_it_through_the_jailers_netns()
    {
        JailTestScope.RequireRoot();
        using var netns = TestNetns.Create();
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var (description, options) = Jailed(scope, root);
        options = options with { NetworkNamespacePath = netns.Path };

        await using var vm = await Microvm.BootAsync(description, options, Ct);
        var vmmNamespace = TestNetns.Run("stat", "-L", "-c", "%i", $"/proc/{vm.Pid}/ns/net").Trim();
        var wanted = TestNetns.Run("stat", "-L", "-c", "%i", netns.Path).Trim();
        await vm.StopAsync(cancellationToken: Ct);
        await vm.CleanupJailAsync(Ct);

        Assert.Equal(wanted, vmmNamespace);
        Assert.Equal(netns.Path, vm.Description!.Jail!.NetworkNamespacePath);
    }

    [Fact]
    public async Task A_jail_naming_another_network_namespace_than_the_vmms_is_refused_before_anything_starts()
    {
        using var root = new TempRoot();
        var scope = new JailTestScope();
        await using (scope)
        {
            var (description, options) = Jailed(scope, root);
            description = description with { Jail = description.Jail! with { NetworkNamespacePath = "/run/netns/one" } };
            options = options with { NetworkNamespacePath = "/run/netns/other" };

            var e = await Assert.ThrowsAsync<MachineDescriptionException>(() => Microvm.BootAsync(description, options, Ct));

            Assert.Equal(nameof(MachineDescription.Jail), e.PropertyName);
            Assert.False(Directory.Exists(JailLayout.For(description.Jail!, options.FirecrackerPath, scope.Id).InstanceDirectory));
        }
    }

    private static async Task<string> ReadLineAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (await stream.ReadAsync(one, Ct) == 1 && one[0] != '\n')
            bytes.Add(one[0]);
        return System.Text.Encoding.ASCII.GetString([.. bytes]);
    }
}
