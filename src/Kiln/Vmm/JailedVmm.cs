// A firecracker launched by Firecracker's jailer: the chroot Kiln prepares (the files the VM needs, visible inside),
// the jailer's command line, the PID namespace an owned VMM runs in so that it dies with its owner (the jailer's uid
// drop clears any death signal of its own), finding the real VMM (the launcher's grandchild there; a detached one is
// the jailer's own process, or with --new-pid-ns the PID file's; identity-checked before it is ever signalled), and
// the clean-up the jailer never does (tree, mounts, cgroups). Every failure during launch removes all of it again.
// Stopping is the Vm layer's ShutdownPlan, which knows a PID namespace's init ends on SIGHUP, not SIGTERM.
using System.Diagnostics;
using System.Globalization;
using Kiln.Host;
using Kiln.Interop;

namespace Kiln.Vmm;

/// <summary>A jailed firecracker process and its jail.</summary>
public sealed class JailedVmm : IAsyncDisposable
{
    private readonly Lock _filesGate = new();
    private readonly List<ExposedFile> _files;
    private readonly VmmProcess? _launcher;
    private readonly bool _owned;
    private int _disposed;

    private JailedVmm(JailRecord record, VmmProcess process, VmmProcess? launcher, bool owned)
    {
        Record = record;
        Process = process;
        _launcher = launcher;
        _owned = owned;
        _files = [.. record.Files];
    }

    /// <summary>The firecracker process (the real one, inside the jail).</summary>
    public VmmProcess Process { get; }

    /// <summary>What identifies this jail and its VMM: persist it to re-attach later.</summary>
    public JailRecord Record { get; private set; }

    /// <summary>The jail's paths.</summary>
    public JailLayout Layout => Record.Layout;

    /// <summary>The VMM's host PID.</summary>
    public int Pid => Record.Identity.Pid;

    /// <summary>The API socket on the host.</summary>
    public string ApiSocketPath => Layout.ApiSocketOnHost;

    /// <summary>The files exposed inside the chroot now.</summary>
    public IReadOnlyList<ExposedFile> Files
    {
        get
        {
            lock (_filesGate)
                return [.. _files];
        }
    }

    /// <summary>Launches firecracker under the jailer; returns once the real VMM runs (identity-checked).</summary>
    /// <exception cref="JailConfigurationException">A bad setting, found before anything started.</exception>
    /// <exception cref="ArgumentException">A console keeper for a daemonizing jail, found before anything started.</exception>
    /// <exception cref="JailInUseException">A live VMM uses a jail with this id.</exception>
    /// <exception cref="JailStartException">The jailer or the VMM failed; everything made for it was removed.</exception>
    public static async Task<JailedVmm> LaunchAsync(JailedLaunchOptions options, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var settings = options.Jail;
        JailSettingsValidator.Validate(settings, options.Id, options.FirecrackerPath, options.Files.Where(f => !f.Shared).Select(f => f.HostPath));
        // An owned VMM's output is piped through this process: a keeper is for a detached one only, as unjailed.
        var keeper = options.Detached ? options.ConsoleKeeper : null;
        RefuseConsoleKeeperWhenDaemonizing(settings, keeper, nameof(options));
        var layout = JailLayout.For(settings, options.FirecrackerPath, options.Id);
        var cgroups = CgroupList(settings, layout);
        await RemoveStaleAsync(layout, cgroups.Select(c => c.Directory).Distinct().ToList(), timeProvider, cancellationToken).ConfigureAwait(false);

        var exposed = new List<ExposedFile>();
        VmmProcess? launcher = null;
        VmmProcess? vmm = null;
        Process? daemonizing = null;
        EarlyConsoleReader? early = null;
        try
        {
            Directory.CreateDirectory(layout.Root);
            // Made and held before the jailer runs: what a failing jailer writes there is kept for the error.
            if (keeper is not null)
                early = EarlyConsoleReader.Create(options.OutputPath);
            foreach (var empty in options.EmptyFiles)
            {
                var path = layout.OnHost(empty);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                // Shared: File.Create's FileShare.None takes .NET's exclusive advisory lock, which fails against any
                // reader of the file (a follower of the log; JailedOwnerKillTests' poll failed CI) and it against us.
                new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete).Dispose();
                if (LibC.LChown(path, settings.Uid, settings.Gid) != 0)
                    throw new IOException($"cannot give {path} to {settings.Uid}:{settings.Gid}: errno {LibC.LastErrno}");
            }
            foreach (var fifo in options.Fifos)
            {
                var path = layout.OnHost(fifo);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                FileNodes.CreateFifo(path);
                if (LibC.LChown(path, settings.Uid, settings.Gid) != 0)
                    throw new IOException($"cannot give {path} to {settings.Uid}:{settings.Gid}: errno {LibC.LastErrno}");
            }
            foreach (var written in options.WrittenFiles)
            {
                var path = layout.OnHost(written.PathInJail);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllBytesAsync(path, written.Content, cancellationToken).ConfigureAwait(false);
                // 0400: the VMM only reads it.
                if (LibC.Chmod(path, 0x100) != 0 || LibC.LChown(path, settings.Uid, settings.Gid) != 0)
                    throw new IOException($"cannot give {path} to {settings.Uid}:{settings.Gid}: errno {LibC.LastErrno}");
            }
            foreach (var file in options.Files)
            {
                exposed.Add(file.Shared
                    ? ChrootFiles.ExposeShared(file.HostPath, layout.Root, file.PathInJail, settings.Uid, settings.Gid)
                    : ChrootFiles.Expose(file.HostPath, layout.Root, file.PathInJail, settings.FileExposure, file.ReadOnly, settings.Uid, settings.Gid));
            }

            // An owned VMM runs in a PID namespace Kiln makes (see KilnNamespaceCommandLine); the jailer's own
            // --new-pid-ns would end it there, so that namespace stands in for it.
            var kilnNamespace = !options.Detached;
            var commandLine = JailerCommandLine(settings, options, cgroups, jailerPidNamespace: settings.NewPidNamespace && !kilnNamespace);
            var jailer = VmmProcess.ResolveExecutable(settings.JailerPath)!;
            if (kilnNamespace)
            {
                var (unshare, inNamespace) = KilnNamespaceCommandLine(jailer, commandLine);
                launcher = await VmmProcess.LaunchAsync(new VmmLaunchOptions
                {
                    ExecutablePath = unshare,
                    Arguments = options.Arguments,
                    CommandLine = inNamespace,
                    OutputPath = options.OutputPath,
                    Environment = options.Environment,
                }, cancellationToken).ConfigureAwait(false);
            }
            else if (settings.Daemonize)
            {
                // The jailer calls setsid() itself, which a session leader may not: no setsid(1) wrapper here, and
                // the jailer's own output is captured only until it daemonizes.
                daemonizing = StartDaemonizingJailer(jailer, commandLine, options);
            }
            else
            {
                launcher = await VmmProcess.LaunchAsync(new VmmLaunchOptions
                {
                    ExecutablePath = jailer,
                    Arguments = options.Arguments,
                    CommandLine = commandLine,
                    OutputPath = options.OutputPath,
                    Detached = true,
                    // The jailer's stdio is firecracker's: it execs it in place, or its clone inherits them.
                    OutputFifoPath = early?.FifoPath,
                    InputPath = options.InputPath,
                    Environment = options.Environment,
                }, cancellationToken).ConfigureAwait(false);
            }

            // Which process becomes the VMM: the jailer's own --new-pid-ns names it in the PID file (a host PID, the
            // jailer being in the host's namespace); in Kiln's namespace it is the jailer, the grandchild of the
            // launcher (unshare → unshare → jailer, which execs firecracker); otherwise the jailer's own process.
            Func<ProcessIdentity?> candidate;
            if (kilnNamespace)
                candidate = GrandchildOf(launcher!.Pid);
            else if (settings.NewPidNamespace)
                candidate = () => FromPidFile(layout);
            else
            {
                var inPlace = launcher?.Pid ?? daemonizing!.Id;
                candidate = () => ProcFs.TryGetIdentity(inPlace);
            }
            var failed = launcher?.Exited ?? daemonizing!.WaitForExitAsync(cancellationToken);
            var identity = await WaitForVmmAsync(layout, candidate, failed, options.ReadyTimeout, timeProvider, cancellationToken).ConfigureAwait(false)
                ?? throw new JailStartException($"The jailer produced no running VMM within {options.ReadyTimeout.TotalSeconds:0.#} s (jail {layout.Root})",
                    launcher?.ReadOutputTail() ?? await ReadAllAsync(daemonizing!).ConfigureAwait(false));
            var sameProcess = launcher is not null && launcher.Pid == identity.Pid;
            vmm = sameProcess ? launcher! : VmmProcess.TryAttach(identity, options.OutputPath)
                ?? throw new JailStartException($"The jailed VMM (PID {identity.Pid}) ended at once", launcher?.ReadOutputTail() ?? "");
            // SIGTERM does nothing to a PID namespace's init: whether the VMM is one decides how it is stopped.
            var isNamespaceInit = ProcFs.GetNamespacePids(identity.Pid) is [_, .., 1];
            if (keeper is not null)
            {
                // The real VMM, identity-proven, is what the keeper watches; the jailer may have ended already.
                vmm.ConsoleKeeper = await ConsoleKeeper.LaunchAsync(keeper, identity, options.OutputPath, options.OutputRotation,
                    options.InputPath, workingDirectory: null, timeProvider, cancellationToken).ConfigureAwait(false);
                early!.Dispose();
            }
            var record = new JailRecord(layout, identity, settings.Uid, settings.Gid, isNamespaceInit, cgroups,
                cgroups.Select(c => c.Directory).Distinct().ToList(), exposed);
            return new JailedVmm(record, vmm, sameProcess ? null : launcher, owned: !options.Detached);
        }
        catch (Exception e)
        {
            // A jailer that failed early wrote its reason into the keeper's FIFO: into the console log with it, where
            // the tail is read from (and where kiln logs finds it).
            if (early is not null)
                CleanupFailures.Run(e, () => early.DrainInto(options.OutputPath));
            var tail = launcher?.ReadOutputTail() ?? "";
            await RollBackAsync(e, layout, cgroups, exposed, vmm, launcher, daemonizing, timeProvider).ConfigureAwait(false);
            if (early is not null)
                CleanupFailures.Run(e, () => File.Delete(early.FifoPath));
            if (e is JailStartException { OutputTail.Length: 0 } && tail.Length > 0)
                throw CleanupFailures.Move(e, new JailStartException(e.Message, tail, e.InnerException));
            if (e is JailStartException or OperationCanceledException)
                throw;
            throw CleanupFailures.Move(e, new JailStartException($"Starting the jailed VMM failed: {e.Message}", tail, e));
        }
        finally
        {
            daemonizing?.Dispose();
            early?.Dispose();
        }
    }

    /// <summary>
    /// A console keeper under a daemonizing jail is refused before anything starts: that jailer puts the VMM's stdout
    /// and stderr on /dev/null, so a keeper would keep nothing while its caller believed the console bounded and
    /// attachable. (The Vm layer asks too, before its boot steps make any file.)
    /// </summary>
    /// <exception cref="ArgumentException">Both were asked for.</exception>
    internal static void RefuseConsoleKeeperWhenDaemonizing(JailSettings settings, ConsoleKeeperCommand? keeper, string paramName)
    {
        if (keeper is not null && settings.Daemonize)
            throw new ArgumentException("A daemonizing jail (Jail.Daemonize) has no console keeper: its jailer puts the VMM's stdout and stderr on /dev/null. Leave ConsoleKeeper null, or do not daemonize.", paramName);
    }

    /// <summary>Re-attaches to a jailed VMM an earlier owner launched; null when it no longer runs.</summary>
    /// <param name="record">The jail and its VMM, as recorded at the launch.</param>
    /// <param name="outputPath">The VMM's console file.</param>
    /// <param name="consoleKeeper">Its console keeper, as recorded, if it had one (see <see cref="VmmProcess.TryAttach"/>).</param>
    public static JailedVmm? TryAttach(JailRecord record, string outputPath, ProcessIdentity? consoleKeeper = null)
    {
        ArgumentNullException.ThrowIfNull(record);
        var process = VmmProcess.TryAttach(record.Identity, outputPath, consoleKeeper);
        return process is null ? null : new JailedVmm(record, process, null, owned: false);
    }

    /// <summary>
    /// The jailed VMM an owner launched but died before recording (found by OwnerKillTests: a detached jailed VMM then
    /// ran on and no other driver could find or stop it). Its identity is proven as a recorded one's would be: the
    /// jail's exec file (<see cref="JailLayout.ExecutableInJail"/>) as its executable, a start time no earlier than
    /// <paramref name="spawnedNotBefore"/> (clock ticks since boot, taken just before the launch), this jail's chroot as
    /// its root and the chroot's API socket on its command line. The record is rebuilt from the settings the jail was
    /// made with; the files exposed in it are not known (the chroot's removal takes them). Null when none runs.
    /// </summary>
    public static JailRecord? FindUnrecorded(JailSettings settings, JailLayout layout, ulong spawnedNotBefore)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(layout);
        foreach (var pid in ProcFs.EnumeratePids())
        {
            if (ProcFs.TryGetIdentity(pid) is not { } identity || identity.StartTimeTicks < spawnedNotBefore
                || identity.ExecutablePath != layout.ExecutableInJail || !UsesJail(pid, layout) || !HasApiSocketInJail(pid))
            {
                continue;
            }
            var cgroups = CgroupList(settings, layout);
            return new JailRecord(layout, identity, settings.Uid, settings.Gid, ProcFs.GetNamespacePids(pid) is [_, .., 1],
                cgroups, cgroups.Select(c => c.Directory).Distinct().ToList(), []);
        }
        return null;
    }

    private static bool HasApiSocketInJail(int pid)
    {
        var args = ProcFs.TryGetCommandLine(pid) ?? [];
        for (var i = 0; i + 1 < args.Count; i++)
        {
            if (args[i] == "--api-sock" && args[i + 1] == JailLayout.ApiSocketInJail)
                return true;
        }
        return false;
    }

    /// <summary>Makes one more file visible inside the chroot (hot-plug), the jail's way.</summary>
    public ExposedFile ExposeFile(JailFile file, JailFileExposure method)
    {
        ArgumentNullException.ThrowIfNull(file);
        var exposed = ChrootFiles.Expose(file.HostPath, Layout.Root, file.PathInJail, method, file.ReadOnly, Record.Uid, Record.Gid);
        lock (_filesGate)
        {
            _files.Add(exposed);
            Record = Record with { Files = [.. _files] };
        }
        return exposed;
    }

    /// <summary>Takes a hot-unplugged file out of the chroot again.</summary>
    public void WithdrawFile(ExposedFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        ChrootFiles.Withdraw(file);
        lock (_filesGate)
        {
            _files.Remove(file);
            Record = Record with { Files = [.. _files] };
        }
    }

    /// <summary>Removes what the jail left (exposed files, mounts, the chroot tree, the cgroups). The VMM must have ended.</summary>
    /// <exception cref="InvalidOperationException">The VMM still runs.</exception>
    public async Task CleanupAsync(TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        if (!Process.HasExited)
            throw new InvalidOperationException($"The jailed VMM (PID {Pid}) still runs; stop it before cleaning its jail");
        if (_launcher is not null)
            await _launcher.Exited.WaitAsync(cancellationToken).ConfigureAwait(false);
        await RemoveJailAsync(Layout, Files, Record.CgroupDirectories, timeProvider, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Removes a jail tree left by an owner that crashed, unless a live VMM uses it.
    /// </summary>
    /// <exception cref="JailInUseException">A live VMM uses it.</exception>
    public static async Task RemoveStaleAsync(JailLayout layout, IReadOnlyList<string> cgroupDirectories, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (!Directory.Exists(layout.InstanceDirectory))
        {
            await Cgroups.RemoveAsync(cgroupDirectories, TimeSpan.FromSeconds(10), timeProvider, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (FindLiveUser(layout) is { } pid)
            throw new JailInUseException(layout.InstanceDirectory, pid);
        await RemoveJailAsync(layout, [], cgroupDirectories, timeProvider, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The PID of a live VMM using this jail: a process running the jail's exec file with the jail's root as its
    /// <c>/</c> (its mount table says which directory that is). The PID file's process is looked at first; when it is
    /// not one (no PID file, or it holds a PID inside Kiln's PID namespace), every process is.
    /// </summary>
    public static int? FindLiveUser(JailLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (FromPidFile(layout) is { } named && UsesJail(named.Pid, layout))
            return named.Pid;
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && UsesJail(pid, layout))
                return pid;
        }
        return null;
    }

    private static bool UsesJail(int pid, JailLayout layout)
    {
        if (ProcFs.TryGetExecutable(pid) != layout.ExecutableInJail)
            return false;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/mountinfo"))
            {
                // Field 4 is the mount's root within its file system, field 5 its mount point: the jail's root is "/".
                var f = line.Split(' ');
                if (f.Length > 4 && f[4] == "/" && layout.Root.EndsWith(f[3], StringComparison.Ordinal))
                    return true;
            }
        }
        catch (IOException)
        {
            // The process ended while its mount table was read: no live user.
        }
        return false;
    }

    private static async Task RemoveJailAsync(JailLayout layout, IReadOnlyList<ExposedFile> files, IReadOnlyList<string> cgroupDirectories, TimeProvider timeProvider, CancellationToken ct)
    {
        foreach (var file in files)
            ChrootFiles.Withdraw(file);
        if (Directory.Exists(layout.InstanceDirectory))
        {
            ChrootFiles.UnmountAllUnder(layout.InstanceDirectory);
            Directory.Delete(layout.InstanceDirectory, recursive: true);
        }
        await Cgroups.RemoveAsync(cgroupDirectories, TimeSpan.FromSeconds(10), timeProvider, ct).ConfigureAwait(false);
    }

    // Each step runs even when an earlier one failed; their failures are attached to the launch's (CleanupFailures).
    private static async Task RollBackAsync(Exception failure, JailLayout layout, IReadOnlyList<JailCgroup> cgroups, List<ExposedFile> exposed,
        VmmProcess? vmm, VmmProcess? launcher, Process? daemonizing, TimeProvider timeProvider)
    {
        // The VMM may be up without our knowing it yet (the PID file came late): only a process proven to be the
        // jail's is killed.
        await CleanupFailures.RunAsync(failure, async () =>
        {
            if (vmm is null && FindLiveUser(layout) is { } pid && ProcFs.TryGetIdentity(pid) is { } identity
                && VmmProcess.TryAttach(identity, "/dev/null") is { } orphan)
            {
                await using (orphan.ConfigureAwait(false))
                    await orphan.KillAsync().ConfigureAwait(false);
            }
        }).ConfigureAwait(false);
        if (vmm is not null)
            await CleanupFailures.RunAsync(failure, () => vmm.KillAsync()).ConfigureAwait(false);
        if (launcher is not null)
        {
            await CleanupFailures.RunAsync(failure, async () =>
            {
                await using (launcher.ConfigureAwait(false))
                    await launcher.KillAsync().ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        if (daemonizing is { HasExited: false })
        {
            await CleanupFailures.RunAsync(failure, async () =>
            {
                daemonizing.Kill();
                await daemonizing.WaitForExitAsync().ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        await CleanupFailures.RunAsync(failure, () => RemoveJailAsync(layout, exposed, cgroups.Select(c => c.Directory).Distinct().ToList(), timeProvider, CancellationToken.None)).ConfigureAwait(false);
    }

    // Races the process that is to become the VMM (becoming the jail's exec file) against the jailer's failure.
    private static async Task<ProcessIdentity?> WaitForVmmAsync(JailLayout layout, Func<ProcessIdentity?> candidate, Task failed, TimeSpan within, TimeProvider timeProvider, CancellationToken ct)
    {
        var started = timeProvider.GetTimestamp();
        while (timeProvider.GetElapsedTime(started) < within)
        {
            // Seen before the candidate is looked at: the jailer writes its PID file before it exits (or execs), so
            // what is seen after its exit is final.
            var exited = failed.IsCompleted;
            var identity = candidate();
            if (identity is not null && identity.ExecutablePath == layout.ExecutableInJail)
                return identity;
            // A jailer that succeeds with --new-pid-ns exits 0 while the VMM it cloned may not have exec'd yet: its
            // exit is a failure only when no process is named (no PID file) or the one named is gone. Otherwise the
            // launcher's exit always is one (its process is the VMM, or the namespace the VMM lived in).
            if (exited && identity is null)
                throw new JailStartException("The jailer exited without starting the VMM", "");
            await Task.Delay(TimeSpan.FromMilliseconds(2), timeProvider, ct).ConfigureAwait(false);
        }
        return null;
    }

    // The PID file's process (the jailer's --new-pid-ns writes it, with the host PID, before it exits).
    private static ProcessIdentity? FromPidFile(JailLayout layout)
    {
        try
        {
            return int.TryParse(File.ReadAllText(layout.PidFile), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                ? ProcFs.TryGetIdentity(pid)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    // In Kiln's PID namespace the VMM is the launcher's grandchild (unshare → unshare, the namespace's init → the
    // jailer, which execs firecracker in place). Its PID never changes, so it is looked for (a /proc scan) until
    // found, then only its identity is read again. The jailer's PID file, if any, would hold its in-namespace PID.
    private static Func<ProcessIdentity?> GrandchildOf(int launcherPid)
    {
        int? found = null;
        return () =>
        {
            if (found is null)
            {
                var init = ProcFs.GetChildren(launcherPid);
                found = init.Count == 1 && ProcFs.GetChildren(init[0]) is [var jailer] ? jailer : null;
            }
            return found is { } pid ? ProcFs.TryGetIdentity(pid) : null;
        };
    }

    // unshare(1) twice: the outer one (the process Kiln spawns, with PR_SET_PDEATHSIG bound to Kiln's owner thread
    // through setpriv) makes a PID namespace whose init is the inner one, which stays root (its credentials never
    // change, so its own death signal, bound to the outer one by --kill-child, is never cleared) and runs the jailer
    // as its only child. The jailer's drop to the jail's uid/gid clears the death signal it inherited, which is why
    // it cannot hold one itself. When the owner dies, even by SIGKILL: outer unshare → SIGKILL → inner unshare, the
    // namespace's init → SIGKILL → the kernel kills every process in the namespace, the VMM too.
    private static (string Unshare, List<string> CommandLine) KilnNamespaceCommandLine(string jailer, IReadOnlyList<string> jailerArguments)
    {
        var unshare = VmmProcess.FindSystemTool("unshare");
        if (unshare is null || VmmProcess.FindSystemTool("setpriv") is null)
            throw new VmmLaunchException(jailer, "an owned jailed VMM needs unshare(1) and setpriv(1) (util-linux) to die with its owner; one was not found");
        List<string> commandLine = ["--pid", "--fork", "--kill-child=SIGKILL", "--", unshare, "--fork", "--kill-child=SIGKILL", "--", jailer];
        commandLine.AddRange(jailerArguments);
        return (unshare, commandLine);
    }

    /// <summary>The cgroup directories the jailer makes for these settings and this jail.</summary>
    public static IReadOnlyList<string> CgroupDirectoriesFor(JailSettings settings, JailLayout layout) =>
        CgroupList(settings, layout).Select(c => c.Directory).Distinct().ToList();

    /// <summary>The cgroup settings the jailer applies for these settings and this jail, with their directories.</summary>
    public static IReadOnlyList<JailCgroup> CgroupsFor(JailSettings settings, JailLayout layout) => CgroupList(settings, layout);

    private static List<JailCgroup> CgroupList(JailSettings settings, JailLayout layout)
    {
        var parent = settings.EffectiveParentCgroup(layout.ExecFileName);
        return settings.CgroupValues()
            .Select(v => new JailCgroup(Cgroups.Directory(settings.CgroupVersion, v.File.Split('.')[0], parent, layout.Id)!, v.File, v.Value))
            .ToList();
    }

    private static List<string> JailerCommandLine(JailSettings s, JailedLaunchOptions o, IReadOnlyList<JailCgroup> cgroups, bool jailerPidNamespace)
    {
        var args = new List<string>
        {
            "--id", o.Id,
            "--exec-file", VmmProcess.ResolveExecutable(o.FirecrackerPath) ?? o.FirecrackerPath,
            "--uid", s.Uid.ToString(CultureInfo.InvariantCulture),
            "--gid", s.Gid.ToString(CultureInfo.InvariantCulture),
            "--chroot-base-dir", s.ChrootBaseDirectory,
            "--cgroup-version", ((int)s.CgroupVersion).ToString(CultureInfo.InvariantCulture),
        };
        if (s.ParentCgroup is not null)
            args.AddRange(["--parent-cgroup", s.ParentCgroup]);
        foreach (var c in cgroups)
            args.AddRange(["--cgroup", $"{c.File}={c.Requested}"]);
        if (s.NetworkNamespacePath is not null)
            args.AddRange(["--netns", s.NetworkNamespacePath]);
        if (s.FileSizeLimit is { } fsize)
            args.AddRange(["--resource-limit", $"fsize={fsize.ToString(CultureInfo.InvariantCulture)}"]);
        if (s.OpenFilesLimit is { } noFile)
            args.AddRange(["--resource-limit", $"no-file={noFile.ToString(CultureInfo.InvariantCulture)}"]);
        if (jailerPidNamespace)
            args.Add("--new-pid-ns");
        if (s.Daemonize)
            args.Add("--daemonize");
        args.Add("--");
        // The jailer passes --id itself; a second one would make firecracker refuse its command line.
        args.AddRange(o.Arguments.WithId(null).ToList());
        return args;
    }

    private static Process StartDaemonizingJailer(string jailer, IReadOnlyList<string> commandLine, JailedLaunchOptions options)
    {
        var psi = new ProcessStartInfo(jailer)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in commandLine)
            psi.ArgumentList.Add(arg);
        if (options.Environment is not null)
        {
            foreach (var (key, value) in options.Environment)
                psi.Environment[key] = value;
        }
        try
        {
            return System.Diagnostics.Process.Start(psi) ?? throw new VmmLaunchException(jailer, "Process.Start returned no process");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new VmmLaunchException(jailer, e.Message, e);
        }
    }

    private static async Task<string> ReadAllAsync(Process process)
    {
        if (!process.HasExited)
            return "";
        return await process.StandardError.ReadToEndAsync().ConfigureAwait(false) + await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
    }

    /// <summary>Releases handles; an owned VMM (launched here, not detached) is killed first, as <see cref="VmmProcess"/> does.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (_owned && !Process.HasExited)
            await Process.KillAsync().ConfigureAwait(false);
        await Process.DisposeAsync().ConfigureAwait(false);
        if (_launcher is not null)
            await _launcher.DisposeAsync().ConfigureAwait(false);
    }
}
