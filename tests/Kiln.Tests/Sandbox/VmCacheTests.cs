// The VM cache (Kata's factory cache): paused clones of a template kept ready and handed to template sandboxes. On
// the stand-in always; the hand-over test also on real Firecracker with the VM tier's guest (KILN_FIRECRACKER,
// /dev/kvm, KILN_TEST_KERNEL, ...), skipped with the reason otherwise.
using System.Diagnostics;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vm.Templates;

namespace Kiln.Tests.Sandbox;

public sealed class VmCacheTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Within = TimeSpan.FromSeconds(30);

    /// <summary>Boots a source sandbox with a vsock device, waits for its guest, makes template "base" of it and stops it.</summary>
    internal static async Task<MicrovmTemplate> TemplateAsync(TempRoot root, SandboxTarget target)
    {
        await using var source = new FirecrackerHypervisor();
        await source.CreateAsync("src", target.Config(root), Ct);
        await source.AddDeviceAsync(new VsockDevice(3, root.Combine("sb", "src", "vsock.sock")), Ct);
        await source.StartAsync(Ct);
        await GuestConsole.WaitForAsync(source, target.ReadyPattern, target.BootTimeout);
        var template = await new TemplateStore(root.Combine("templates")).CreateAsync("base", source.Vm!, Ct);
        await source.StopAsync(Ct);
        return template;
    }

    private static VmCacheOptions CacheOptions(TempRoot root, SandboxTarget target, MicrovmTemplate template, int size) => new()
    {
        TemplateDirectory = template.Directory,
        FirecrackerPath = target.FirecrackerPath,
        Directory = root.Combine("cache"),
        Size = size,
        MaxConcurrentRestores = 2,
    };

    private static HypervisorConfig Restored(TempRoot root, SandboxTarget target, MicrovmTemplate template) => target.Config(root, poolSize: 0) with
    {
        KernelPath = root.Combine("no-kernel-needed"),
        Restore = SandboxRestore.FromTemplate(template.Directory),
    };

    private static string UniqueId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    /// <summary>The VMMs whose command line names the cache directory (spawned by the cache, handed out or not).</summary>
    private static IReadOnlyList<int> CacheVmms(TempRoot root) => ProcessScan.WithCommandLineContaining(root.Combine("cache") + "/");

    /// <summary>Records the <c>kiln.sandbox.vm_cache</c> tag of the restore span of one sandbox.</summary>
    private sealed class CacheTagListener : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly List<string?> _tags = [];

        public CacheTagListener(string sandboxId)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name == KilnTelemetry.Name,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStopped = a =>
                {
                    if (a.OperationName == "kiln.sandbox.restore" && (string?)a.GetTagItem("kiln.sandbox.id") == sandboxId)
                    {
                        lock (_tags)
                            _tags.Add(a.GetTagItem("kiln.sandbox.vm_cache") as string);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public string? Single()
        {
            lock (_tags)
                return Assert.Single(_tags);
        }

        public IReadOnlyList<string?> All()
        {
            lock (_tags)
                return [.. _tags];
        }

        public void Dispose() => _listener.Dispose();
    }

    [Theory]
    [MemberData(nameof(SandboxTarget.Names), MemberType = typeof(SandboxTarget))]
    public async Task A_sandbox_from_a_warm_cache_runs_a_cached_vm_that_answers_on_the_sandbox_vsock_and_the_cache_refills(string targetName)
    {
        using var root = new TempRoot();
        var target = SandboxTarget.For(targetName, root);
        var template = await TemplateAsync(root, target);
        await using var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 2), Ct);
        await cache.WaitUntilFullAsync(Ct).WaitAsync(Within, Ct);
        var cached = CacheVmms(root);
        Assert.Equal(2, cached.Count);
        var id = UniqueId("warm");
        using var tags = new CacheTagListener(id);
        await using var sandbox = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { VmCache = cache });
        await sandbox.CreateAsync(id, Restored(root, target, template), Ct);

        await sandbox.StartAsync(Ct);

        Assert.Equal(SandboxState.Running, sandbox.State);
        Assert.Contains(sandbox.Pid!.Value, cached);
        Assert.Equal("hit", tags.Single());
        var vsock = Assert.Single(sandbox.Devices.OfType<VsockDevice>());
        Assert.Equal(Path.Combine(sandbox.SandboxDirectory, "vsock.sock"), vsock.UdsPath);
        if (target.VsockEchoPort is { } port)
            Assert.Equal("from the cache", await VsockProbe.EchoAsync(vsock.UdsPath, port, "from the cache", Ct));
        Assert.True(File.Exists(Path.Combine(sandbox.SandboxDirectory, "firecracker.sock")));
        Assert.Equal(SandboxState.Running, (await SandboxCatalog.GetAsync(root.Combine("sb"), id, Ct)).State);
        // The record names the handed-over VMM: another driver (the CLI, say) re-attaches to it through the sandbox's socket.
        await using (var reattached = await FirecrackerHypervisor.OpenAsync(root.Combine("sb"), id, cancellationToken: Ct))
        {
            Assert.Equal(SandboxState.Running, reattached.State);
            Assert.Equal(sandbox.Pid, reattached.Pid);
            await reattached.PauseAsync(Ct);
            await reattached.ResumeAsync(Ct);
        }

        // The hand-out started a refill: the cache is full again, with a VMM that is not the sandbox's.
        await cache.WaitUntilFullAsync(Ct).WaitAsync(Within, Ct);
        Assert.Equal(2, cache.ReadyCount);
        Assert.Equal(3, CacheVmms(root).Count);
        Assert.Equal(2, Directory.EnumerateDirectories(root.Combine("cache")).Count());

        await sandbox.StopAsync(Ct);
        Assert.Equal(SandboxState.Stopped, sandbox.State);
        Assert.Equal(2, CacheVmms(root).Count);

        // A restart takes another cached VM into the same directory (over the sockets the stopped one left).
        var ready = CacheVmms(root);
        await sandbox.StartAsync(Ct);
        Assert.Contains(sandbox.Pid!.Value, ready);
        Assert.Equal(["hit", "hit"], tags.All());
        if (target.VsockEchoPort is { } again)
            Assert.Equal("restarted", await VsockProbe.EchoAsync(vsock.UdsPath, again, "restarted", Ct));
        await sandbox.StopAsync(Ct);
    }

    [Fact]
    public async Task Disposing_the_cache_stops_every_cached_vm_and_leaves_no_process_or_file()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 3), Ct);
        await cache.WaitUntilFullAsync(Ct).WaitAsync(Within, Ct);
        Assert.Equal(3, CacheVmms(root).Count);

        await cache.DisposeAsync();

        Assert.Empty(CacheVmms(root));
        Assert.False(Directory.Exists(root.Combine("cache")));
    }

    [Fact]
    public async Task Disposing_the_cache_while_it_restores_cancels_the_restores_and_leaves_nothing()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        // The loads never answer: every refill is in flight when the cache is disposed.
        var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 2) with
        {
            Environment = new Dictionary<string, string> { ["FAKE_FC_HANG"] = "PUT /snapshot/load" },
        }, Ct);
        await Eventually.TrueAsync(() => CacheVmms(root).Count == 2, Within, "both refills spawned their VMM");
        Assert.Equal(2, cache.RestoringCount);

        await cache.DisposeAsync().AsTask().WaitAsync(Within, Ct);

        Assert.Empty(CacheVmms(root));
        Assert.False(Directory.Exists(root.Combine("cache")));
        Assert.Null(cache.Fault);
    }

    [Fact]
    public async Task A_sandbox_restores_directly_when_no_cached_vm_is_ready_and_says_so()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        await using var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 1) with
        {
            Environment = new Dictionary<string, string> { ["FAKE_FC_HANG"] = "PUT /snapshot/load" },
        }, Ct);
        var id = UniqueId("miss");
        using var tags = new CacheTagListener(id);
        await using var sandbox = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { VmCache = cache });
        await sandbox.CreateAsync(id, Restored(root, target, template), Ct);

        await sandbox.StartAsync(Ct);

        Assert.Equal(SandboxState.Running, sandbox.State);
        Assert.Equal("miss", tags.Single());
        Assert.DoesNotContain(sandbox.Pid!.Value, CacheVmms(root));
        if (target.VsockEchoPort is { } port)
            Assert.Equal("direct", await VsockProbe.EchoAsync(Assert.Single(sandbox.Devices.OfType<VsockDevice>()).UdsPath, port, "direct", Ct));
    }

    [Fact]
    public async Task A_failed_refill_is_thrown_by_the_next_take_and_leaves_no_process_or_file()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        await using var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 1) with
        {
            Environment = new Dictionary<string, string> { ["FAKE_FC_FAIL"] = "PUT /snapshot/load=400:no memory for you" },
        }, Ct);
        await Eventually.TrueAsync(() => cache.Fault is not null, Within, "the refill failed");
        Assert.Empty(CacheVmms(root));
        Assert.Empty(Directory.EnumerateFileSystemEntries(root.Combine("cache")));
        var id = UniqueId("fail");
        await using var sandbox = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { VmCache = cache });
        await sandbox.CreateAsync(id, Restored(root, target, template), Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => sandbox.StartAsync(Ct));

        Assert.Equal(FirecrackerHypervisor.VmCacheStep, e.Step);
        var refill = Assert.IsType<VmCacheException>(e.InnerException);
        Assert.Contains("no memory for you", refill.Message, StringComparison.Ordinal);
        Assert.Equal(SandboxState.Created, sandbox.State);
        Assert.Null(sandbox.Pid);
        // Reported once: the take restarted refilling, which fails again and waits for the next take.
        await Eventually.TrueAsync(() => cache.Fault is not null, Within, "the next refill failed");
        await Assert.ThrowsAsync<VmCacheException>(() => cache.WaitUntilFullAsync(Ct));
        Assert.Empty(CacheVmms(root));
    }

    [Fact]
    public async Task A_cached_vm_that_dies_is_replaced()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        await using var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 1), Ct);
        await cache.WaitUntilFullAsync(Ct).WaitAsync(Within, Ct);
        var first = Assert.Single(CacheVmms(root));
        var firstSlot = Assert.Single(Directory.EnumerateDirectories(root.Combine("cache")));

        using (var process = Process.GetProcessById(first))
            process.Kill();

        await Eventually.TrueAsync(() => CacheVmms(root) is [var pid] && pid != first && cache.ReadyCount == 1, Within, "a new cached VM replaced the dead one");
        Assert.False(Directory.Exists(firstSlot));
        Assert.Null(cache.Fault);
    }

    [Fact]
    public async Task A_deleted_template_drains_the_cache_and_the_next_take_says_so()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        await using var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 2), Ct);
        await cache.WaitUntilFullAsync(Ct).WaitAsync(Within, Ct);

        Assert.True(new TemplateStore(root.Combine("templates")).Delete("base"));

        await Eventually.TrueAsync(() => CacheVmms(root).Count == 0 && !Directory.EnumerateFileSystemEntries(root.Combine("cache")).Any(),
            Within, "the cached VMs were stopped and their slots removed");
        Assert.Equal(0, cache.ReadyCount);
        var e = await Assert.ThrowsAsync<VmCacheException>(() => cache.WaitUntilFullAsync(Ct));
        Assert.IsType<TemplateStoreException>(e.InnerException);
        Assert.Contains("deleted", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_detached_sandbox_bypasses_the_cache()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        await using var cache = await VmCache.StartAsync(CacheOptions(root, target, template, size: 1), Ct);
        await cache.WaitUntilFullAsync(Ct).WaitAsync(Within, Ct);
        var id = UniqueId("detached");
        using var tags = new CacheTagListener(id);
        await using var sandbox = new FirecrackerHypervisor(new FirecrackerHypervisorOptions { VmCache = cache, Ownership = Kiln.Vmm.VmmOwnership.Detached });
        await sandbox.CreateAsync(id, Restored(root, target, template), Ct);

        await sandbox.StartAsync(Ct);

        Assert.Equal("bypass", tags.Single());
        Assert.Equal(1, cache.ReadyCount);
        Assert.DoesNotContain(sandbox.Pid!.Value, CacheVmms(root));
        await sandbox.StopAsync(Ct);
    }

    [Fact]
    public async Task A_cancelled_start_leaves_no_cache_and_no_process()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var template = await TemplateAsync(root, target);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VmCache.StartAsync(CacheOptions(root, target, template, size: 2), cancelled.Token));

        Assert.Empty(CacheVmms(root));
    }

    [Fact]
    public async Task Options_that_no_cache_could_use_are_refused_naming_the_property()
    {
        using var root = new TempRoot();
        var options = new VmCacheOptions { TemplateDirectory = root.Combine("t"), FirecrackerPath = SandboxTarget.FakePath, Directory = root.Combine("c"), Size = 0 };

        var e = await Assert.ThrowsAsync<SandboxConfigurationException>(() => VmCache.StartAsync(options, Ct));

        Assert.Equal(nameof(VmCacheOptions.Size), e.PropertyName);
        Assert.Equal(nameof(VmCacheOptions.Directory), Assert.Throws<SandboxConfigurationException>(() =>
            (options with { Size = 1, Directory = "/" + new string('d', 100) }).Validate()).PropertyName);
    }
}
