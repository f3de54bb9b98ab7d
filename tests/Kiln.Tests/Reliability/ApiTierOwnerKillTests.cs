using Kiln.Sandbox;
using Kiln.Tests.Support;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// The owner-kill cases that real Firecracker can take without KVM (its API tier, KILN_FIRECRACKER): the library host
/// is held as a start phase's span begins, up to InstanceStart exclusive, and SIGKILLed there. The kernel and rootfs
/// are placeholder files, which Firecracker only opens before InstanceStart. The same cases run on the stand-in, so
/// the assertions are exercised here. Afterwards: an owned VMM has died with its owner, a detached one runs and
/// another process re-attaches to it and stops it; the record says what happened; a clean-up leaves the root as it
/// was. (The hung-request phases of <see cref="OwnerKillTests"/> need the stand-in's FAKE_FC_HANG.)
/// </summary>
public sealed class ApiTierOwnerKillTests
{
    private const string Id = "owned";

    /// <summary>A phase: the span (or log event) the host is held at, and whether a VMM exists then.</summary>
    private static readonly (string Hold, bool Spawned)[] Phases =
    [
        ("kiln.sandbox.start.spawn", false),
        ("firecracker started", true),
        ("kiln.sandbox.start.api-ready", true),
        ("kiln.sandbox.start.machine-config", true),
        ("kiln.sandbox.start.boot-source", true),
        ("kiln.sandbox.start.rootfs", true),
        ("kiln.sandbox.start.block-pool", true),
        ("kiln.sandbox.start.instance-start", true),
    ];

    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var target in SandboxTarget.Names)
        {
            foreach (var (hold, _) in Phases)
            {
                data.Add(target, hold, false);
                data.Add(target, hold, true);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_vmm_and_the_record_are_right_after_the_owner_is_sigkilled_before_instance_start(string target, string hold, bool detached)
    {
        using var root = new TempRoot();
        var stand = SandboxTarget.Fake(root);
        var sandboxTarget = target == "real" ? stand with { Name = "real", FirecrackerPath = Kiln.Testing.RealFirecracker.RequireBinary() } : stand;
        var spawned = Phases.Single(p => p.Hold == hold).Spawned;
        var phase = new OwnerPhase(hold, "start", hold, null, spawned, spawned ? SandboxState.Starting : SandboxState.Created);
        var sandboxRoot = root.Combine("sb");
        var directory = Path.Combine(sandboxRoot, Id);
        var socket = Path.Combine(directory, "firecracker.sock");
        Directory.CreateDirectory(sandboxRoot);
        var before = Files(root.Path);

        await using (var host = OwnerHost.Start(sandboxTarget, sandboxRoot, Id, detached, phase, []))
        {
            await host.WaitUntilAtPhaseAsync(phase, Path.Combine(directory, "firecracker.log"));
            host.Kill();
        }

        var survives = detached && spawned;
        var vmmsLeft = await OwnerKillTests.VmmsAfterOwnerDiedAsync(socket, expectAlive: survives);
        var recorded = await RecordedAfterOwnerDiedAsync(sandboxRoot, Id, alive: survives);
        Assert.DoesNotContain(Files(root.Path).Except(before), f => !f.StartsWith(directory, StringComparison.Ordinal));
        await using (var other = await FirecrackerHypervisor.OpenAsync(sandboxRoot, Id, cancellationToken: Ct))
        {
            if (survives)
            {
                Assert.Single(vmmsLeft);
                Assert.Equal(SandboxState.Starting, recorded);
                Assert.Equal(SandboxState.Starting, other.State);
                await other.StopAsync(TimeSpan.Zero, Ct);
                AssertNoVmm(socket);
                Assert.Equal(SandboxState.Stopped, (await SandboxCatalog.GetAsync(sandboxRoot, Id, Ct)).State);
            }
            else
            {
                Assert.Empty(vmmsLeft);
                Assert.Equal(spawned ? SandboxState.Exited : SandboxState.Created, recorded);
            }
            await other.CleanupAsync(Ct);
        }
        AssertNoVmm(socket);
        Assert.Equal(before, Files(root.Path));
    }
}
