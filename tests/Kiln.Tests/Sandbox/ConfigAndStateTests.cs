using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

public sealed class ConfigAndStateTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static HypervisorConfig ValidConfig(TempRoot root)
    {
        File.WriteAllText(root.Combine("vmlinux"), "k");
        File.WriteAllText(root.Combine("rootfs.img"), "r");
        return new HypervisorConfig
        {
            FirecrackerPath = "/bin/true",
            KernelPath = root.Combine("vmlinux"),
            ImagePath = root.Combine("rootfs.img"),
            RootDirectory = root.Combine("sb"),
        };
    }

    public static TheoryData<string, Func<HypervisorConfig, HypervisorConfig>> BadConfigs => new()
    {
        { nameof(HypervisorConfig.FirecrackerPath), c => c with { FirecrackerPath = "/no/such/firecracker" } },
        { nameof(HypervisorConfig.KernelPath), c => c with { KernelPath = "/no/such/kernel" } },
        { nameof(HypervisorConfig.ImagePath), c => c with { ImagePath = null, InitrdPath = null } },
        { nameof(HypervisorConfig.InitrdPath), c => c with { InitrdPath = "/no/such/initrd" } },
        { nameof(HypervisorConfig.VcpuCount), c => c with { VcpuCount = 0 } },
        { nameof(HypervisorConfig.VcpuCount), c => c with { VcpuCount = 33 } },
        { nameof(HypervisorConfig.MemoryMiB), c => c with { MemoryMiB = 0 } },
        { nameof(HypervisorConfig.BlockPoolSize), c => c with { BlockPoolSize = -1 } },
        { nameof(HypervisorConfig.ApiReadyTimeout), c => c with { ApiReadyTimeout = TimeSpan.Zero } },
        { nameof(HypervisorConfig.KernelParams), c => c with { KernelParams = [new KernelParam("--", null)] } },
        { nameof(HypervisorConfig.KernelParams), c => c with { KernelParams = [new KernelParam("init", "/bin/sh x")] } },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void Validation_names_the_bad_property(string property, Func<HypervisorConfig, HypervisorConfig> spoil)
    {
        using var root = new TempRoot();
        var e = Assert.Throws<SandboxConfigurationException>(() => HypervisorConfigValidator.Validate(spoil(ValidConfig(root))));
        Assert.Equal(property, e.PropertyName);
    }

    [Fact]
    public void A_valid_configuration_passes()
    {
        using var root = new TempRoot();
        HypervisorConfigValidator.Validate(ValidConfig(root));
    }

    [Fact]
    public async Task The_state_file_round_trips_and_is_replaced_atomically()
    {
        using var root = new TempRoot();
        var path = root.Combine("state.json");
        var state = new SandboxStateFile
        {
            Id = "sb",
            Config = ValidConfig(root) with { KernelParams = [new KernelParam("quiet"), new KernelParam("root", "/dev/vda")] },
            State = SandboxState.Running,
            Ownership = VmmOwnership.Detached,
            Pid = 42,
            StartTimeTicks = 123456,
            ExecutablePath = "/usr/bin/firecracker",
            SocketPath = "/s",
            ConsolePath = "/c",
            StartedAt = DateTimeOffset.Parse("2026-11-27T01:02:03Z"),
            PoolSlots = [new PoolSlot(0, "drive_0", "/dev/vdb", "/data.img", false), new PoolSlot(1, "drive_1", "/dev/vdc", null, false)],
            Devices =
            [
                new VsockDevice(3, "/v.sock"),
                new BlockDevice("/q.img") { Id = "q", ReadOnly = true },
                new NetworkDevice("tap0") { TxOps = new TokenBucketLimit(10, 1000, 5) },
            ],
        };

        await state.WriteAsync(path, Ct);
        await (state with { State = SandboxState.Paused }).WriteAsync(path, Ct);
        var read = await SandboxStateFile.TryReadAsync(path, Ct);

        Assert.NotNull(read);
        Assert.Equal(SandboxState.Paused, read.State);
        Assert.Equal(state.Config.KernelParams, read.Config.KernelParams);
        Assert.Equal(state.PoolSlots, read.PoolSlots);
        Assert.Equal(state.Devices, read.Devices);
        Assert.Equal(state with { State = SandboxState.Paused, Config = read.Config, PoolSlots = read.PoolSlots, Devices = read.Devices }, read);
        Assert.Equal(["state.json"], Directory.GetFiles(root.Path, "state.json*").Select(Path.GetFileName));
        Assert.Contains("\"state\":\"Paused\"", await File.ReadAllTextAsync(path, Ct));
        Assert.Contains("\"kind\":\"vsock\"", await File.ReadAllTextAsync(path, Ct));
    }

    [Theory]
    [InlineData("pool_slots")]
    [InlineData("devices")]
    public async Task A_state_file_without_an_optional_list_reads_it_as_empty(string key)
    {
        // As an earlier Kiln wrote them (devices came later) or a person trimmed them: the generated deserializer
        // sets a missing init-only property to null, not to its initialiser.
        using var root = new TempRoot();
        var path = root.Combine("state.json");
        var state = new SandboxStateFile
        {
            Id = "old", Config = ValidConfig(root), SocketPath = "/s", ConsolePath = "/c", State = SandboxState.Stopped,
            PoolSlots = [new PoolSlot(0, "drive_0", "/dev/vdb", null, false)],
            Devices = [new VsockDevice(3, "/v.sock")],
        };
        await state.WriteAsync(path, Ct);
        var json = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(path, Ct))!.AsObject();
        Assert.True(json.Remove(key), $"the state file has no '{key}' to remove");
        await File.WriteAllTextAsync(path, json.ToJsonString(), Ct);

        var read = await SandboxStateFile.TryReadAsync(path, Ct);

        Assert.NotNull(read);
        Assert.Equal(key == "pool_slots" ? [] : state.PoolSlots, read.PoolSlots);
        Assert.Equal(key == "devices" ? [] : state.Devices, read.Devices);
        Assert.Equal(state.Config.StopTimeout, read.Config.StopTimeout);
    }

    [Fact]
    public async Task A_state_file_from_a_newer_kiln_is_refused_with_both_versions()
    {
        using var root = new TempRoot();
        var path = root.Combine("state.json");
        var state = new SandboxStateFile { Id = "new", Config = ValidConfig(root), SocketPath = "/s", ConsolePath = "/c" };
        await (state with { Version = SandboxStateFile.CurrentVersion + 1 }).WriteAsync(path, Ct);

        var e = await Assert.ThrowsAsync<SandboxException>(() => SandboxStateFile.TryReadAsync(path, Ct));

        Assert.Contains($"version {SandboxStateFile.CurrentVersion + 1}", e.Message);
        Assert.Contains($"up to version {SandboxStateFile.CurrentVersion}", e.Message);
    }

    [Fact]
    public async Task A_missing_state_file_reads_as_none_and_a_corrupt_one_is_an_error()
    {
        using var root = new TempRoot();
        Assert.Null(await SandboxStateFile.TryReadAsync(root.Combine("state.json"), Ct));
        await File.WriteAllTextAsync(root.Combine("state.json"), "{not json", Ct);
        await Assert.ThrowsAsync<SandboxException>(() => SandboxStateFile.TryReadAsync(root.Combine("state.json"), Ct));
    }

    [Fact]
    public async Task A_scan_lists_the_readable_sandboxes_and_the_unreadable_ones_apart_while_list_throws()
    {
        using var root = new TempRoot();
        var sandboxRoot = root.Combine("sb");
        foreach (var id in new[] { "a-bad", "b-good", "c-newer" })
            Directory.CreateDirectory(Path.Combine(sandboxRoot, id));
        var good = new SandboxStateFile { Id = "b-good", Config = ValidConfig(root), SocketPath = "/s", ConsolePath = "/c" };
        await good.WriteAsync(Path.Combine(sandboxRoot, "b-good", "state.json"), Ct);
        await (good with { Id = "c-newer", Version = SandboxStateFile.CurrentVersion + 1 }).WriteAsync(Path.Combine(sandboxRoot, "c-newer", "state.json"), Ct);
        await File.WriteAllTextAsync(Path.Combine(sandboxRoot, "a-bad", "state.json"), "[]", Ct);

        var scan = await SandboxCatalog.ScanAsync(sandboxRoot, Ct);

        Assert.Equal(["b-good"], scan.Sandboxes.Select(s => s.Id));
        Assert.Equal(["a-bad", "c-newer"], scan.Unreadable.Select(u => u.Id));
        Assert.Equal(Path.Combine(sandboxRoot, "c-newer"), scan.Unreadable[1].Directory);
        Assert.Contains("newer Kiln", scan.Unreadable[1].Error.Message);
        var e = await Assert.ThrowsAsync<SandboxException>(() => SandboxCatalog.ListAsync(sandboxRoot, Ct));
        Assert.Same(scan.Unreadable[0].Error.GetType(), e.GetType());
        Assert.Contains("a-bad", e.Message);
    }

    [Fact]
    public async Task The_catalog_reports_a_recorded_running_vmm_that_is_gone_as_exited()
    {
        using var root = new TempRoot();
        var sandboxRoot = root.Combine("sb");
        Directory.CreateDirectory(Path.Combine(sandboxRoot, "vm1"));
        Directory.CreateDirectory(Path.Combine(sandboxRoot, "vm2"));
        var me = Kiln.Host.ProcFs.TryGetIdentity(Environment.ProcessId)!;
        var baseState = new SandboxStateFile { Id = "vm1", Config = ValidConfig(root), SocketPath = "/s", ConsolePath = "/c", State = SandboxState.Running };
        // vm1 claims a PID whose start time does not match: another process now.
        await (baseState with { Pid = me.Pid, StartTimeTicks = me.StartTimeTicks + 1 }).WriteAsync(Path.Combine(sandboxRoot, "vm1", "state.json"), Ct);
        // vm2 claims this very process: alive.
        await (baseState with { Id = "vm2", Pid = me.Pid, StartTimeTicks = me.StartTimeTicks, ExecutablePath = me.ExecutablePath }).WriteAsync(Path.Combine(sandboxRoot, "vm2", "state.json"), Ct);

        var list = await SandboxCatalog.ListAsync(sandboxRoot, Ct);

        Assert.Equal(["vm1", "vm2"], list.Select(i => i.Id));
        Assert.Equal(SandboxState.Exited, list[0].State);
        Assert.Null(list[0].Pid);
        Assert.Equal(SandboxState.Running, list[1].State);
        Assert.Equal(me.Pid, list[1].Pid);
        await Assert.ThrowsAsync<SandboxNotFoundException>(() => SandboxCatalog.GetAsync(sandboxRoot, "vm3", Ct));
        Assert.Empty(await SandboxCatalog.ListAsync(root.Combine("nothing-here"), Ct));
    }
}
