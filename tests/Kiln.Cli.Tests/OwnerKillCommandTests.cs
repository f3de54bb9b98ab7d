// A kiln process SIGKILLed while the stand-in holds one of its requests (FAKE_FC_HANG) or never opens its API
// (FAKE_FC_NO_API_SOCKET): a foreground run's VMM dies with it; the VMM of a detached run, a restore, a template clone
// or a detached sandbox whose pause, hot-plug or snapshot was under way keeps running, ps says what it is, and another
// kiln stops and removes it. Either way `kiln rm` leaves the root as it was. The phases kiln cannot be held at from
// outside (placeholders, spawn, the record after the spawn, the steps of a stop) are covered by the library host in
// tests/Kiln.Tests/Reliability/OwnerKillTests, which runs the same driver code.
using System.Text.Json;

namespace Kiln.Cli.Tests;

public sealed class OwnerKillCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    /// <summary>What kiln is doing when it is killed, and what the VMM's stand-in is told.</summary>
    public sealed record KillCase(string Name, string Command, string? Hang, string? Knob, string Recorded)
    {
        public override string ToString() => Name;
    }

    private static readonly KillCase[] Cases =
    [
        new("run: api-ready", "run", null, "FAKE_FC_NO_API_SOCKET", "Starting"),
        new("run: machine-config", "run", "PUT /machine-config", null, "Starting"),
        new("run: boot-source", "run", "PUT /boot-source", null, "Starting"),
        new("run: rootfs", "run", "PUT /drives/rootfs", null, "Starting"),
        new("run: block-pool", "run", "PUT /drives/drive_0", null, "Starting"),
        new("run: instance-start", "run", "PUT /actions", null, "Starting"),
        new("run --detach: api-ready", "run --detach", null, "FAKE_FC_NO_API_SOCKET", "Starting"),
        new("run --detach: machine-config", "run --detach", "PUT /machine-config", null, "Starting"),
        new("run --detach: rootfs", "run --detach", "PUT /drives/rootfs", null, "Starting"),
        new("run --detach: instance-start", "run --detach", "PUT /actions", null, "Starting"),
        new("restore: api-ready", "restore", null, "FAKE_FC_NO_API_SOCKET", "Starting"),
        new("restore: snapshot-load", "restore", "PUT /snapshot/load", null, "Starting"),
        new("run --template: snapshot-load", "run --template", "PUT /snapshot/load", null, "Starting"),
        new("pause: PATCH /vm", "pause", "PATCH /vm", null, "Running"),
        new("drive add: PATCH /drives/drive_0", "drive add", "PATCH /drives/drive_0", null, "Running"),
        new("snapshot: PUT /snapshot/create", "snapshot", "PUT /snapshot/create", null, "Paused"),
    ];

    public static TheoryData<string> CaseNames => [.. Cases.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task The_vmm_and_the_record_are_right_after_kiln_is_sigkilled_at(string caseName)
    {
        var phase = Cases.Single(c => c.Name == caseName);
        const string name = "victim";
        var knobs = new Dictionary<string, string>();
        if (phase.Hang is { } hang)
            knobs["FAKE_FC_HANG"] = hang;
        if (phase.Knob is { } knob)
            knobs[knob] = "1";
        string[] command;
        switch (phase.Command)
        {
            case "run":
            case "run --detach":
                command = ["run", .. phase.Command == "run" ? Array.Empty<string>() : ["--detach"], "--name", name, "--kernel", _root.Kernel, "--rootfs", _root.Rootfs];
                break;
            case "restore":
                await _root.RunDetachedAsync("src");
                Assert.Equal(0, (await _root.RunAsync("snapshot", "src")).ExitCode);
                command = ["restore", name, "--snapshot", Path.Combine(_root.Root, "src", "snapshot.state"), "--mem", Path.Combine(_root.Root, "src", "snapshot.mem")];
                break;
            case "run --template":
                await _root.RunDetachedAsync("src");
                Assert.Equal(0, (await _root.RunAsync("template", "create", "base", "--from", "src")).ExitCode);
                command = ["run", "--template", "base", "--name", name];
                break;
            default:
                // The VMM is started with the knob; the operation that then hangs is the one kiln is killed in.
                await RunDetachedWithAsync(name, knobs);
                knobs.Clear();
                if (phase.Command == "snapshot")
                    Assert.Equal(0, (await _root.RunAsync("pause", name)).ExitCode);
                command = phase.Command switch
                {
                    "pause" => ["pause", name],
                    "drive add" => ["drive", "add", name, _root.CreateFile("hot.img", 1024 * 1024)],
                    _ => ["snapshot", name],
                };
                break;
        }
        var sandboxDirectory = Path.Combine(_root.Root, name);
        var socket = Path.Combine(sandboxDirectory, "firecracker.sock");
        var owned = phase.Command == "run";

        await using (var kiln = Start(command, knobs))
        {
            await WaitUntilHeldAsync(kiln, phase, Path.Combine(sandboxDirectory, "firecracker.log"), name);
            kiln.Signal(NativeMethods.SIGKILL);
            await kiln.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        }

        var vmms = await VmmsAsync(socket, expected: owned ? 0 : 1);
        var recorded = (await _root.PsAsync(name)).GetProperty("state").GetString();
        if (owned)
        {
            Assert.Empty(vmms);
            Assert.Equal("Exited", recorded);
        }
        else
        {
            Assert.Single(vmms);
            Assert.Equal(phase.Recorded, recorded);
            var stop = await _root.RunAsync("stop", name, "--force");
            Assert.True(stop.ExitCode == 0, stop.ToString());
            Assert.Empty(await VmmsAsync(socket, expected: 0));
            Assert.Equal("Stopped", (await _root.PsAsync(name)).GetProperty("state").GetString());
        }
        var rm = await _root.RunAsync("rm", name);

        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.False(Directory.Exists(sandboxDirectory), "kiln rm left the sandbox directory");
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(sandboxDirectory));
    }

    private KilnChild Start(string[] args, Dictionary<string, string> knobs)
    {
        var start = _root.StartInfo(args);
        foreach (var (key, value) in knobs)
            start.Environment[key] = value;
        return new KilnChild(start);
    }

    private async Task RunDetachedWithAsync(string name, Dictionary<string, string> knobs)
    {
        await using var run = Start(["run", "--detach", "--name", name, "--kernel", _root.Kernel, "--rootfs", _root.Rootfs], knobs);
        var result = await run.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    /// <summary>Until the VMM has logged the hung request, or (no API socket) ps shows it recorded and Starting.</summary>
    private async Task WaitUntilHeldAsync(KilnChild kiln, KillCase phase, string vmmLog, string name)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            if (phase.Hang is { } hang)
            {
                var marker = $"{hang[0]}{hang[1..hang.IndexOf(' ')].ToLowerInvariant()} request on \"{hang[(hang.IndexOf(' ') + 1)..]}\"";
                if (File.Exists(vmmLog) && (await File.ReadAllTextAsync(vmmLog, TestContext.Current.CancellationToken)).Contains(marker, StringComparison.Ordinal))
                    return;
            }
            else
            {
                var ps = await _root.RunAsync("ps", "--json");
                var entry = ps.ExitCode == 0 ? ps.Json().EnumerateArray().FirstOrDefault(s => s.GetProperty("name").GetString() == name) : default;
                if (entry.ValueKind != JsonValueKind.Undefined && entry.GetProperty("state").GetString() == "Starting"
                    && entry.GetProperty("pid").ValueKind == JsonValueKind.Number)
                {
                    return;
                }
            }
            Assert.False(kiln.HasExited, $"kiln ended before the phase '{phase}':\n{kiln.Stdout}");
            Assert.True(DateTime.UtcNow < deadline, $"kiln did not reach the phase '{phase}' within a minute:\n{kiln.Stdout}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>The sandbox's VMMs, once their number is <paramref name="expected"/> or a deadline has passed
    /// (an owned VMM dies of its parent-death signal a moment after kiln).</summary>
    private static async Task<IReadOnlyList<int>> VmmsAsync(string socket, int expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var vmms = KilnSandboxRoot.ProcessesMentioning(socket).ToArray();
            if (vmms.Length == expected || DateTime.UtcNow > deadline)
                return vmms;
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
