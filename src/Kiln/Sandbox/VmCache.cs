// The cache half of Kata's VM factory (virtcontainers/factory: a base VM, here a template, and a cache of VMs made
// from it ahead of demand, handed to new sandboxes). It keeps Size clones of one template restored and *paused*: the
// guest has not run since the snapshot, so a handed-out VM is the same guest a direct restore would give, and a
// waiting VM costs no CPU (the 2-core hosts Kiln runs on cannot afford N idle guests spinning). What is left for the
// hand-over is a rename of its files and one resume request. Refills run in the background, at most
// MaxConcurrentRestores at a time, after each hand-out and whenever a cached VM dies on its own (it is replaced). A
// failed refill stops refilling and is thrown by the next take (and logged), which starts refilling again: a failure
// is never swallowed and never retried in a loop. Cached VMMs are owned (the same spawn from the owner thread with a
// death signal as every owned VMM), so they die with this process; dispose stops them by the shutdown plan and
// removes their files. A deleted template drains the cache: the next take stops every cached VM and throws.
using Kiln.Vm;
using Kiln.Vm.Templates;
using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox;

/// <summary>A pool of paused clones of one template, handed to sandboxes configured with it.</summary>
public sealed class VmCache : IAsyncDisposable
{
    private const string SlotPrefix = "slot-";
    private readonly Lock _lock = new();
    private readonly List<CachedVm> _ready = [];
    private readonly List<Task> _refills = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _logger;
    private readonly SandboxLock _directoryLock;
    private readonly DateTimeOffset _templateCreatedAt;
    private FileSystemWatcher? _templateWatcher;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _restoring;
    private long _nextSlot;
    private Exception? _fault;
    private bool _disposed;
    private bool _templateGone;

    private VmCache(VmCacheOptions options, MicrovmTemplate template, SandboxLock directoryLock, ILogger logger)
    {
        Options = options;
        Template = template;
        _directoryLock = directoryLock;
        _logger = logger;
        _templateCreatedAt = template.Manifest.CreatedAt;
    }

    /// <summary>What it keeps and where.</summary>
    public VmCacheOptions Options { get; }

    /// <summary>The template its VMs are clones of.</summary>
    public MicrovmTemplate Template { get; }

    /// <summary>VMs restored, paused and waiting.</summary>
    public int ReadyCount
    {
        get
        {
            lock (_lock)
                return _ready.Count;
        }
    }

    /// <summary>Refills under way.</summary>
    public int RestoringCount
    {
        get
        {
            lock (_lock)
                return _restoring;
        }
    }

    /// <summary>The refill failure the next take will throw (refilling has stopped until then); null when none.</summary>
    public Exception? Fault
    {
        get
        {
            lock (_lock)
                return _fault;
        }
    }

    /// <summary>
    /// Checks the options and the template (release, files), takes the cache directory (clearing what a dead cache
    /// left there) and starts filling in the background.
    /// </summary>
    /// <exception cref="SandboxConfigurationException">A bad option, or a template with network interfaces (each clone would need its own TAP).</exception>
    /// <exception cref="TemplateMismatchException">The template must not be loaded by this binary.</exception>
    /// <exception cref="TemplateStoreException">No template there.</exception>
    /// <exception cref="VmCacheException">Another cache uses the directory.</exception>
    public static async Task<VmCache> StartAsync(VmCacheOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var full = Path.GetFullPath(options.TemplateDirectory);
        var template = new TemplateStore(Path.GetDirectoryName(full)!).Open(Path.GetFileName(full));
        if (template.Manifest.NetworkInterfaceIds.Count > 0)
        {
            throw new SandboxConfigurationException(nameof(options.TemplateDirectory),
                $"template '{template.Name}' has network interfaces; a cached clone would need a TAP before the sandbox that takes it is known");
        }
        await template.VerifyAsync(options.FirecrackerPath, cancellationToken).ConfigureAwait(false);
        var directory = Directory.CreateDirectory(options.Directory).FullName;
        SandboxLock directoryLock;
        try
        {
            directoryLock = await SandboxLock.AcquireAsync(directory, "vm-cache", TimeSpan.Zero, options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (SandboxException e)
        {
            throw new VmCacheException($"Another VM cache uses {directory}.", e);
        }
        // Slots left by a cache whose process died: their VMMs died with it (owned), their files are ours to remove.
        foreach (var stale in Directory.EnumerateDirectories(directory, SlotPrefix + "*"))
            Directory.Delete(stale, recursive: true);
        var cache = new VmCache(options with { Directory = directory, TemplateDirectory = full }, template, directoryLock,
            options.LoggerFactory?.CreateLogger("Kiln.Sandbox.VmCache") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        cache.WatchTemplate();
        cache.Refill();
        return cache;
    }

    /// <summary>
    /// Waits until <see cref="VmCacheOptions.Size"/> VMs are ready (a warm-up, or a test's arrange step).
    /// </summary>
    /// <exception cref="VmCacheException">A refill failed meanwhile (it is then cleared and refilling resumes).</exception>
    public async Task WaitUntilFullAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (TakeFaultLocked() is { } fault)
                {
                    Refill();
                    throw Surfaced(fault);
                }
                if (_ready.Count >= Options.Size)
                    return;
                changed = _changed.Task;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Takes a ready VM (paused, in its slot directory) and starts a refill; null when none is ready.
    /// </summary>
    /// <exception cref="VmCacheException">A refill failed since the last take, or the template was deleted (the cache is drained).</exception>
    internal async Task<CachedVm?> TakeAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!File.Exists(Path.Combine(Options.TemplateDirectory, TemplateStore.ManifestFile)))
        {
            await DrainAsync().ConfigureAwait(false);
            throw new VmCacheException($"Template '{Template.Name}' was deleted; the VM cache stopped its {Options.Size} cached VMs.");
        }
        CachedVm? taken = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (TakeFaultLocked() is { } fault)
            {
                Refill();
                throw Surfaced(fault);
            }
            // A VM that died a moment ago is still listed until its watcher removes it: skip it.
            var index = _ready.FindIndex(c => c.Vm.State == MicrovmState.Paused);
            if (index >= 0)
            {
                taken = _ready[index];
                _ready.RemoveAt(index);
                taken.Taken = true;
            }
        }
        Refill();
        return taken;
    }

    /// <summary>
    /// Drains the cache the moment its template directory is deleted or renamed away (TemplateStore.Delete renames,
    /// then deletes): its VMs are clones of something that no longer exists, and the next take says so.
    /// </summary>
    private void WatchTemplate()
    {
        var watcher = new FileSystemWatcher(Path.GetDirectoryName(Options.TemplateDirectory)!)
        {
            NotifyFilter = NotifyFilters.DirectoryName,
            IncludeSubdirectories = false,
        };
        watcher.Deleted += (_, e) =>
        {
            if (e.Name == Template.Name)
                OnTemplateGone();
        };
        watcher.Renamed += (_, e) =>
        {
            if (e.OldName == Template.Name)
                OnTemplateGone();
        };
        watcher.EnableRaisingEvents = true;
        _templateWatcher = watcher;
    }

    private void OnTemplateGone()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _templateGone = true;
            _fault = new TemplateStoreException(Template.Name, $"Template '{Template.Name}' was deleted; the VM cache stopped its cached VMs.");
            _refills.Add(Task.Run(async () =>
            {
                VmCacheLog.TemplateDeleted(_logger, Template.Name);
                await DrainAsync().ConfigureAwait(false);
            }));
        }
    }

    /// <summary>Removes a taken VM's slot once the sandbox has its files (or after a failed hand-over stopped it).</summary>
    internal void Release(CachedVm vm)
    {
        Template.RemoveCloneFiles(vm.Clone);
        DeleteDirectory(vm.Clone.Directory);
    }

    /// <summary>Stops every cached VM by the shutdown plan, waits for refills under way to roll back, and removes the files.</summary>
    public async ValueTask DisposeAsync()
    {
        Task[] refills;
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            refills = [.. _refills];
        }
        _templateWatcher?.Dispose();
        await _stop.CancelAsync().ConfigureAwait(false);
        // A refill cancelled mid-restore rolls its own VMM and files back; one that finished meanwhile stops its VM.
        await Task.WhenAll(refills.Select(t => t.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default))).ConfigureAwait(false);
        await DrainAsync().ConfigureAwait(false);
        _directoryLock.Dispose();
        try
        {
            Directory.Delete(Options.Directory);
        }
        catch (IOException)
        {
            // Not empty: something not the cache's lives there (Directory may be shared with other files).
        }
        _stop.Dispose();
    }

    /// <summary>Stops and removes every ready VM.</summary>
    private async Task DrainAsync()
    {
        CachedVm[] drained;
        lock (_lock)
        {
            drained = [.. _ready];
            _ready.Clear();
            foreach (var vm in drained)
                vm.Taken = true;
        }
        foreach (var vm in drained)
            await StopAndRemoveAsync(vm).ConfigureAwait(false);
        Signal();
    }

    private async Task StopAndRemoveAsync(CachedVm vm)
    {
        await vm.Vm.StopAsync(Options.EffectiveShutdownPlan, CancellationToken.None).ConfigureAwait(false);
        await vm.Vm.DisposeAsync().ConfigureAwait(false);
        Release(vm);
    }

    private Exception? TakeFaultLocked()
    {
        var fault = _fault;
        _fault = null;
        return fault;
    }

    private VmCacheException Surfaced(Exception fault) =>
        new($"Refilling the VM cache of template '{Template.Name}' failed: {fault.Message}", fault);

    /// <summary>Starts refills up to the size and the concurrency bound, unless disposed or a failure awaits its report.</summary>
    private void Refill()
    {
        lock (_lock)
        {
            _refills.RemoveAll(t => t.IsCompleted);
            while (!_disposed && _fault is null && _ready.Count + _restoring < Options.Size && _restoring < Options.MaxConcurrentRestores)
            {
                _restoring++;
                var slot = Interlocked.Increment(ref _nextSlot);
                _refills.Add(Task.Run(() => FillOneAsync(slot)));
            }
        }
    }

    private async Task FillOneAsync(long slot)
    {
        var clone = CloneOptions(slot);
        Microvm vm;
        try
        {
            // The directory may have been deleted and a new template made under the same name since the cache verified it.
            var current = new TemplateStore(Path.GetDirectoryName(Options.TemplateDirectory)!).Open(Template.Name);
            if (current.Manifest.CreatedAt != _templateCreatedAt)
                throw new TemplateStoreException(Template.Name, $"Template '{Template.Name}' was replaced since the VM cache verified it.");
            Directory.CreateDirectory(clone.Directory);
            vm = await Template.StartVerifiedCloneAsync(clone, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The failed restore killed its VMM and removed the files it made; the slot directory goes too.
            DeleteDirectory(clone.Directory);
            lock (_lock)
            {
                _restoring--;
                if (!_disposed)
                    _fault = e;
            }
            if (!(e is OperationCanceledException && _stop.IsCancellationRequested))
                VmCacheLog.RefillFailed(_logger, e, Template.Name, slot);
            Signal();
            return;
        }

        var cached = new CachedVm(vm, clone);
        bool keep;
        lock (_lock)
        {
            _restoring--;
            // A restore that finished after its template was deleted is not kept: the drain has already run.
            keep = !_disposed && !_templateGone;
            if (keep)
                _ready.Add(cached);
        }
        if (!keep)
        {
            await StopAndRemoveAsync(cached).ConfigureAwait(false);
            return;
        }
        VmCacheLog.Filled(_logger, Template.Name, slot, vm.Pid);
        _ = ReplaceWhenItDiesAsync(cached, slot);
        Signal();
        Refill();
    }

    /// <summary>A cached VM that ends on its own (killed, crashed) is removed with its files and replaced.</summary>
    private async Task ReplaceWhenItDiesAsync(CachedVm cached, long slot)
    {
        var status = await cached.Vm.Exited.ConfigureAwait(false);
        lock (_lock)
        {
            // Handed out (the sandbox owns it now), drained or disposed: not the cache's to clean.
            if (cached.Taken || _disposed)
                return;
            _ready.Remove(cached);
            cached.Taken = true;
        }
        VmCacheLog.CachedVmDied(_logger, Template.Name, slot, status);
        await cached.Vm.DisposeAsync().ConfigureAwait(false);
        Release(cached);
        Signal();
        Refill();
    }

    private TemplateCloneOptions CloneOptions(long slot)
    {
        var directory = Path.Combine(Options.Directory, SlotPrefix + slot.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // Laid out as a sandbox directory, so a hand-over renames each file to the same name in the sandbox's.
        var paths = new SandboxPaths(directory);
        return new TemplateCloneOptions
        {
            Directory = directory,
            TrackDirtyPages = Options.TrackDirtyPages,
            ClockRealtime = Options.ClockRealtime,
            Resume = false,
            Microvm = new MicrovmOptions
            {
                FirecrackerPath = Options.FirecrackerPath,
                SocketPath = paths.SocketPath,
                ConsolePath = paths.ConsolePath,
                LogPath = paths.VmmLogPath,
                Id = $"kiln-cache-{slot}",
                WorkingDirectory = directory,
                Ownership = Kiln.Vmm.VmmOwnership.Owned,
                Environment = Options.Environment,
                ApiReadyTimeout = Options.ApiReadyTimeout,
                BootTimeout = Options.BootTimeout,
                RequestTimeout = Options.RequestTimeout,
                TimeProvider = Options.TimeProvider,
            },
        };
    }

    private void Signal()
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    private static void DeleteDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>One cached VM: paused, its files in its slot directory until a sandbox takes them.</summary>
internal sealed class CachedVm(Microvm vm, TemplateCloneOptions clone)
{
    public Microvm Vm { get; } = vm;

    public TemplateCloneOptions Clone { get; } = clone;

    /// <summary>Handed out, drained or dead: no longer the cache's (set under the cache's lock).</summary>
    public bool Taken { get; set; }
}
