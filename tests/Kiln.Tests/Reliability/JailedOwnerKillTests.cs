using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vmm;
using static Kiln.Tests.Reliability.FaultHarness;

namespace Kiln.Tests.Reliability;

/// <summary>
/// The phases of a jailed start at which the owner dies (fake-jailer with the stand-in, as root): before the launch,
/// with the jailed VMM up but not yet recorded, waiting for its API, inside its configuration requests and
/// InstanceStart, and once recorded. Fields as <see cref="OwnerPhase"/>.
/// </summary>
public static class JailedOwnerPhases
{
    public static readonly OwnerPhase[] All =
    [
        new("jail: spawn (no chroot yet)", "start", "kiln.sandbox.start.spawn", null, false, SandboxState.Created),
        new("jail: chroot made, jailed VMM up, before the record", "start", "firecracker started", null, true, SandboxState.Starting),
        new("jail: api-ready", "start", "kiln.sandbox.start.api-ready", null, true, SandboxState.Starting),
        new("jail: machine-config", "start", null, "PUT /machine-config", true, SandboxState.Starting),
        new("jail: rootfs", "start", null, "PUT /drives/rootfs", true, SandboxState.Starting),
        new("jail: block-pool", "start", null, "PUT /drives/drive_0", true, SandboxState.Starting),
        new("jail: instance-start", "start", null, "PUT /actions", true, SandboxState.Starting),
        // No "jail: running": InstanceStart answers once the VM runs, so an API boot has no step after it.
        new("jail: started, record written", "start", "operation-done", null, true, SandboxState.Running),
    ];

    public static TheoryData<string> Names => [.. All.Select(p => p.Name)];

    public static OwnerPhase Named(string name) => All.Single(p => p.Name == name);
}

/// <summary>
/// A library host (tests/Kiln.TestOwner) driving a jailed sandbox, SIGKILLed at each phase of the jailed start. An
/// owned VMM dies with it (Kiln's PID namespace); a detached one runs on, and another process finds it (from the
/// record, or by its jail when the owner died before the record), re-attaches and stops it. Either way the other
/// process's clean-up leaves no chroot, mount or cgroup, and nothing outside the sandbox directory and the jail is
/// ever made.
/// </summary>
public abstract class JailedOwnerKillTests(bool detached)
{
    private const string Id = "jailed";

    [Theory]
    [MemberData(nameof(JailedOwnerPhases.Names), MemberType = typeof(JailedOwnerPhases))]
    public async Task The_jailed_vmm_the_record_and_the_jail_are_right_after_the_owner_is_sigkilled_at(string phaseName)
    {
        JailTestScope.RequireRoot();
        var phase = JailedOwnerPhases.Named(phaseName);
        await using var scope = new JailTestScope();
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root) with
        {
            FirecrackerPath = scope.FirecrackerPath,
            KernelPath = scope.File("vmlinux"),
            ImagePath = scope.File("rootfs.ext4"),
        };
        // On the chroot base's file system, so that the pool's placeholder is hard-linked into the jail.
        var sandboxRoot = Directory.CreateDirectory(Path.Combine(scope.Base, "sb")).FullName;
        var layout = JailLayout.For(scope.Settings(), scope.FirecrackerPath, FirecrackerHypervisor.InstanceId(Id));
        var before = Files(scope.Base);
        string[] jail = ["--jailer", scope.JailerPath, "--chroot-base", scope.Base, "--parent-cgroup", scope.ParentCgroup];

        await using (var host = OwnerHost.Start(target, sandboxRoot, Id, detached, phase, jail))
        {
            await host.WaitUntilAtPhaseAsync(phase, layout.OnHost("/firecracker.log"));
            host.Kill();
        }

        var survives = detached && phase.Spawned;
        var user = await JailUserAfterOwnerDiedAsync(layout, expectAlive: survives);
        var recorded = await RecordedAfterOwnerDiedAsync(sandboxRoot, Id, alive: survives);
        // Only the sandbox directory and the jail's own tree (under the exec file's directory) were made.
        Assert.Empty(Directory.GetFileSystemEntries(scope.Base).Except([sandboxRoot, scope.Files, Path.GetDirectoryName(layout.InstanceDirectory)!]));
        await using (var other = await FirecrackerHypervisor.OpenAsync(sandboxRoot, Id, cancellationToken: Ct))
        {
            if (survives)
            {
                Assert.NotNull(user);
                Assert.Equal(phase.Recorded, recorded);
                Assert.Equal(phase.Recorded, other.State);
                Assert.Equal(user, other.Pid);
                await other.StopAsync(TimeSpan.Zero, Ct);
                Assert.Null(JailedVmm.FindLiveUser(layout));
                Assert.Equal(SandboxState.Stopped, (await SandboxCatalog.GetAsync(sandboxRoot, Id, Ct)).State);
            }
            else
            {
                Assert.Null(user);
                // Nothing runs: the record may say it never started (Created) or that its VMM ended (Exited), never more.
                Assert.Equal(phase.Spawned ? SandboxState.Exited : SandboxState.Created, recorded);
            }
            await other.CleanupAsync(Ct);
        }

        Assert.False(Directory.Exists(layout.InstanceDirectory));
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
        Assert.Equal(before, Files(scope.Base).Where(f => !f.StartsWith(Path.GetDirectoryName(layout.InstanceDirectory)!, StringComparison.Ordinal)));
    }

    /// <summary>
    /// The live VMM using the jail once its owner is dead: an owned one dies with Kiln's PID namespace a moment later,
    /// so this waits (up to a deadline) for what the ownership promises, then reports what is there.
    /// </summary>
    private static async Task<int?> JailUserAfterOwnerDiedAsync(JailLayout layout, bool expectAlive)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var user = JailedVmm.FindLiveUser(layout);
            if (user is not null == expectAlive || DateTime.UtcNow > deadline)
                return user;
            await Task.Delay(20, Ct);
        }
    }
}

public sealed class OwnedJailedOwnerKillTests() : JailedOwnerKillTests(detached: false);

public sealed class DetachedJailedOwnerKillTests() : JailedOwnerKillTests(detached: true);
