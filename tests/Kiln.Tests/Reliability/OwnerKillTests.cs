using System.Diagnostics;
using System.Text;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// A phase at which the owning process dies. <c>Hold</c> stops the library host itself when that step's span or log
/// event begins (see tests/Kiln.TestOwner); <c>Hang</c> instead makes the stand-in never answer that request, so the
/// host waits inside it. <c>Operation</c>: start, restore, or what the host does once the VM runs (pause, snapshot,
/// stop, stop-now, hotplug). <c>Spawned</c>: whether a VMM exists when the owner dies. <c>Recorded</c>: what another
/// process reads from state.json while a detached VMM still runs. <c>Knob</c>: a stand-in knob set to 1.
/// </summary>
public sealed record OwnerPhase(string Name, string Operation, string? Hold, string? Hang, bool Spawned, SandboxState Recorded,
    bool VmmSurvivesDetached = true, string? Knob = null)
{
    public override string ToString() => Name;

    public static readonly OwnerPhase[] All =
    [
        new("start: placeholders", "start", "kiln.sandbox.start.placeholders", null, false, SandboxState.Created),
        new("start: spawn", "start", "kiln.sandbox.start.spawn", null, false, SandboxState.Created),
        new("start: after spawn, before the record", "start", "firecracker started", null, true, SandboxState.Starting),
        new("start: api-ready", "start", "kiln.sandbox.start.api-ready", null, true, SandboxState.Starting),
        new("start: machine-config", "start", null, "PUT /machine-config", true, SandboxState.Starting),
        new("start: boot-source", "start", null, "PUT /boot-source", true, SandboxState.Starting),
        new("start: rootfs", "start", null, "PUT /drives/rootfs", true, SandboxState.Starting),
        new("start: block-pool", "start", null, "PUT /drives/drive_0", true, SandboxState.Starting),
        new("start: device-0-vsock", "start", null, "PUT /vsock", true, SandboxState.Starting),
        new("start: instance-start", "start", null, "PUT /actions", true, SandboxState.Starting),
        // No "start: running": InstanceStart answers once the VM runs, so an API boot has no step after it.
        new("start: started, record written", "start", "operation-done", null, true, SandboxState.Running),
        new("restore: spawn", "restore", "kiln.vm.restore.spawn", null, false, SandboxState.Created),
        new("restore: after spawn, before the record", "restore", "firecracker started", null, true, SandboxState.Starting),
        new("restore: api-ready", "restore", "kiln.vm.restore.api-ready", null, true, SandboxState.Starting),
        new("restore: snapshot-load", "restore", null, "PUT /snapshot/load", true, SandboxState.Starting),
        new("restore: restored, record written", "restore", "operation-done", null, true, SandboxState.Running),
        new("stop: SIGTERM sent, in the grace period", "stop", "shutdown action Terminate sent", null, true, SandboxState.Running, Knob: "FAKE_FC_IGNORE_SIGTERM"),
        new("stop: SIGKILL sent", "stop-now", "shutdown action Kill sent", null, true, SandboxState.Running, VmmSurvivesDetached: false, Knob: "FAKE_FC_IGNORE_SIGTERM"),
        new("hot-plug: PATCH /drives/drive_0", "hotplug", null, "PATCH /drives/drive_0", true, SandboxState.Running),
        new("pause: PATCH /vm", "pause", null, "PATCH /vm", true, SandboxState.Running),
        new("snapshot: PUT /snapshot/create", "snapshot", null, "PUT /snapshot/create", true, SandboxState.Paused),
    ];

    public static TheoryData<string> Names => [.. All.Select(p => p.Name)];

    public static OwnerPhase Named(string name) => All.Single(p => p.Name == name);
}

/// <summary>
/// A library host (tests/Kiln.TestOwner) SIGKILLed at each phase of start, restore, stop, hot-plug, pause and
/// snapshot. Afterwards: an owned VMM has died with its owner, a detached one still runs and another process
/// re-attaches to it and stops it; the record says what happened; the sandbox can be started again; and what is left
/// is inside the sandbox directory, where <c>CleanupAsync</c> (<c>kiln rm</c>) removes it, leaving the root as before.
/// </summary>
public abstract class OwnerKillTests(bool detached)
{
    private const string Id = "owned";

    [Theory]
    [MemberData(nameof(OwnerPhase.Names), MemberType = typeof(OwnerPhase))]
    public async Task The_vmm_and_the_record_are_right_after_the_owner_is_sigkilled_at(string phaseName)
    {
        var phase = OwnerPhase.Named(phaseName);
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        var sandboxRoot = root.Combine("sb");
        var config = target.Config(root, poolSize: 1) with { VcpuCount = 1, StopTimeout = TimeSpan.FromSeconds(5) };
        string[] extra = [];
        if (phase.Operation == "restore")
        {
            var (state, memory) = await SnapshotAsync(config);
            config = config with { BlockPoolSize = 0, Restore = SandboxRestore.FromSnapshot(state, memory) };
            extra = ["--restore-state", state, "--restore-mem", memory];
        }
        else if (phase.Operation is not "start")
        {
            var then = phase.Operation == "hotplug" ? "hotplug=" + MakeFile(root.Combine("hot.img")) : phase.Operation;
            extra = ["--then", then];
        }
        if (phase.Name.Contains("vsock", StringComparison.Ordinal))
            extra = [.. extra, "--vsock"];
        var paths = new { Directory = Path.Combine(sandboxRoot, Id), Socket = Path.Combine(sandboxRoot, Id, "firecracker.sock") };
        Directory.CreateDirectory(sandboxRoot);
        var before = Files(root.Path);

        await using (var host = OwnerHost.Start(target, sandboxRoot, Id, detached, phase, extra))
        {
            await host.WaitUntilAtPhaseAsync(phase, Path.Combine(paths.Directory, "firecracker.log"));
            host.Kill();
        }

        var vmmsLeft = await VmmsAfterOwnerDiedAsync(paths.Socket, expectAlive: detached && phase.Spawned && phase.VmmSurvivesDetached);
        var recorded = await RecordedAfterOwnerDiedAsync(sandboxRoot, Id, alive: detached && phase.Spawned && phase.VmmSurvivesDetached);
        var strays = Files(root.Path).Except(before).Where(f => !f.StartsWith(paths.Directory, StringComparison.Ordinal)).ToArray();

        Assert.Empty(strays);
        if (detached && phase.Spawned && phase.VmmSurvivesDetached)
        {
            Assert.Single(vmmsLeft);
            Assert.Equal(phase.Recorded, recorded);
            // Another process re-attaches and stops it.
            await using var other = await FirecrackerHypervisor.OpenAsync(sandboxRoot, Id, cancellationToken: Ct);
            Assert.Equal(phase.Recorded, other.State);
            await other.StopAsync(TimeSpan.Zero, Ct);
            AssertNoVmm(paths.Socket);
            Assert.Equal(SandboxState.Stopped, (await SandboxCatalog.GetAsync(sandboxRoot, Id, Ct)).State);
        }
        else
        {
            Assert.Empty(vmmsLeft);
            // Nothing runs: the record may say it never started (Created) or that its VMM ended (Exited), never more.
            Assert.Equal(phase.Spawned ? SandboxState.Exited : SandboxState.Created, recorded);
        }

        // The sandbox is still usable: another process starts it again, stops it and removes it without a trace.
        await using (var again = new FirecrackerHypervisor())
        {
            await again.CreateAsync(Id, config, Ct);
            await again.StartAsync(Ct);
            Assert.Equal(SandboxState.Running, again.State);
            await again.StopAsync(TimeSpan.Zero, Ct);
            await again.CleanupAsync(Ct);
        }
        AssertNoVmm(paths.Socket);
        Assert.Equal(before, Files(root.Path));
    }

    /// <summary>A snapshot of another sandbox in the same root, for the restore phases.</summary>
    private static async Task<(string State, string Memory)> SnapshotAsync(HypervisorConfig config)
    {
        await using var source = new FirecrackerHypervisor();
        await source.CreateAsync("source", config, Ct);
        await source.StartAsync(Ct);
        await source.PauseAsync(Ct);
        var snapshot = await source.SaveAsync(Ct);
        await source.StopAsync(TimeSpan.Zero, Ct);
        return (snapshot.StatePath, snapshot.MemoryPath);
    }

    private static string MakeFile(string path)
    {
        using (var file = File.Create(path))
            file.SetLength(1024 * 1024);
        return path;
    }

    /// <summary>
    /// The VMMs of the sandbox once its owner is dead: an owned one dies of its parent-death signal a moment later,
    /// so this waits (up to a deadline) for the count the ownership promises, then reports what is there.
    /// </summary>
    internal static async Task<IReadOnlyList<int>> VmmsAfterOwnerDiedAsync(string socketPath, bool expectAlive)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var vmms = ProcessScan.WithCommandLineContaining(socketPath);
            if ((expectAlive ? vmms.Count == 1 : vmms.Count == 0) || DateTime.UtcNow > deadline)
                return vmms;
            await Task.Delay(20, Ct);
        }
    }
}

public sealed class OwnedOwnerKillTests() : OwnerKillTests(detached: false);

public sealed class DetachedOwnerKillTests() : OwnerKillTests(detached: true);

/// <summary>The library host process (tests/Kiln.TestOwner), its stdout collected line by line.</summary>
internal sealed class OwnerHost : IAsyncDisposable
{
    private static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "Kiln.TestOwner");
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private OwnerHost(Process process) => _process = process;

    public static OwnerHost Start(SandboxTarget target, string sandboxRoot, string id, bool detached, OwnerPhase phase, string[] extra)
    {
        string[] args =
        [
            "--root", sandboxRoot, "--id", id, "--firecracker", target.FirecrackerPath, "--kernel", target.KernelPath,
            "--rootfs", target.ImagePath!, .. detached ? ["--detached"] : Array.Empty<string>(),
            .. phase.Hold is { } hold ? ["--hold", hold] : Array.Empty<string>(), .. extra,
        ];
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        if (phase.Hang is { } request)
            environment["FAKE_FC_HANG"] = request;
        if (phase.Knob is { } knob)
            environment[knob] = "1";
        return StartWith(args, environment);
    }

    /// <summary>The host with these arguments (its other modes: <c>vm-cache …</c>) and extra environment.</summary>
    public static OwnerHost StartWith(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        var process = new Process { StartInfo = start };
        var host = new OwnerHost(process);
        // Attached before the start, so no line is lost.
        process.OutputDataReceived += (_, e) => host.Append(e.Data);
        process.ErrorDataReceived += (_, e) => host.Append(e.Data is null ? null : "stderr: " + e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return host;
    }

    private string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.Append(line).Append('\n');
    }

    /// <summary>Until the host says it is held, or (a hung request) the VMM has logged that request.</summary>
    public async Task WaitUntilAtPhaseAsync(OwnerPhase phase, string vmmLogPath)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            if (phase.Hold is { } hold && Output.Contains("HELD " + hold, StringComparison.Ordinal))
                return;
            if (phase.Hang is { } hang && File.Exists(vmmLogPath)
                && (await File.ReadAllTextAsync(vmmLogPath, Ct)).Contains(LogMarker(hang), StringComparison.Ordinal))
            {
                return;
            }
            Assert.False(_process.HasExited, $"the host ended before the phase '{phase}':\n{Output}");
            Assert.True(DateTime.UtcNow < deadline, $"the host did not reach the phase '{phase}' within a minute:\n{Output}");
            await Task.Delay(20, Ct);
        }
    }

    /// <summary>Until the host has printed <paramref name="line"/> (a "HELD …" or "READY …"), within a minute.</summary>
    public async Task WaitForLineAsync(string line)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!Output.Split('\n').Contains(line))
        {
            Assert.False(_process.HasExited, $"the host ended before saying '{line}':\n{Output}");
            Assert.True(DateTime.UtcNow < deadline, $"the host did not say '{line}' within a minute:\n{Output}");
            await Task.Delay(20, Ct);
        }
    }

    /// <summary>SIGKILL: nothing of the host runs after it.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
