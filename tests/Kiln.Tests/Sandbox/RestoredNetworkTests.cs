using Kiln.Host.Network;
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Vm.Templates;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

/// <summary>
/// Restored sandboxes with a sandbox network: each clone of a template made from a networked sandbox gets a network of
/// its own (namespace, TAP, with nat a veth link and NAT rules) and keeps the template's guest MAC and address. Root
/// only: "the host" is a namespace of the test's, sandbox namespaces get a prefix of its own, all removed on failure.
/// </summary>
public sealed class RestoredNetworkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class World : NetworkWorld
    {
        public FirecrackerHypervisorOptions Options(Dictionary<string, string>? environment = null) => new()
        {
            Networks = NetworkOptions,
            Environment = environment,
        };

        public HypervisorConfig Source(SandboxNetworkSpec network) => SandboxTarget.Fake(Root).Config(Root) with { Network = network };

        public HypervisorConfig Clone(MicrovmTemplate template, SandboxNetworkSpec network) => SandboxTarget.Fake(Root).Config(Root, poolSize: 0) with
        {
            KernelPath = Root.Combine("no-kernel-needed"),
            Restore = SandboxRestore.FromTemplate(template.Directory),
            Network = network,
        };

        public async Task<(FirecrackerHypervisor Source, MicrovmTemplate Template)> TemplateAsync(SandboxNetworkSpec network)
        {
            var source = new FirecrackerHypervisor(Options());
            await source.CreateAsync("src", Source(network), Ct);
            await source.StartAsync(Ct);
            var template = await new TemplateStore(Root.Combine("templates")).CreateAsync("net", source.Vm!, Ct);
            return (source, template);
        }
    }

    [Fact]
    public async Task Nat_clones_get_a_namespace_tap_and_link_of_their_own_with_the_templates_mac_and_address_and_stop_removes_each()
    {
        using var world = new World();
        var nat = new SandboxNetworkSpec { Mode = NetworkMode.Nat, GuestAddress = InterfaceAddress.Parse("10.9.8.7/24", "test") };
        var (source, template) = await world.TemplateAsync(nat);
        await using var _source = source;
        var sourceInfo = world.Networks.Get("src")!;
        await using var c0 = new FirecrackerHypervisor(world.Options());
        await using var c1 = new FirecrackerHypervisor(world.Options());
        // The clones ask for nat only: the guest's address and MAC are the template's.
        await c0.CreateAsync("c0", world.Clone(template, new SandboxNetworkSpec { Mode = NetworkMode.Nat }), Ct);
        await c1.CreateAsync("c1", world.Clone(template, new SandboxNetworkSpec { Mode = NetworkMode.Nat }), Ct);

        await c0.StartAsync(Ct);
        await c1.StartAsync(Ct);

        var n0 = world.Networks.Get("c0")!;
        var n1 = world.Networks.Get("c1")!;
        foreach (var (info, id) in new[] { (n0, "c0"), (n1, "c1") })
        {
            Assert.Equal(world.NamespacePath(id), info.NamespacePath);
            Assert.Equal(sourceInfo.GuestMac, info.GuestMac);
            Assert.Equal("10.9.8.7/24", info.GuestAddress!.ToString());
            Assert.Contains("10.9.8.1/24", world.InSandbox(id, "ip", "-o", "addr", "show", "tap0"));
        }
        Assert.NotEqual(n0.HostVeth, n1.HostVeth);
        Assert.NotEqual(n0.HostVethAddress, n1.HostVethAddress);
        Assert.NotEqual(c0.Pid, c1.Pid);

        await c0.StopAsync(Ct);

        Assert.False(File.Exists(n0.NamespacePath));
        Assert.Null(world.Networks.Get("c0"));
        Assert.True(File.Exists(n1.NamespacePath));
        Assert.Equal(SandboxState.Running, c1.State);
    }

    [Fact]
    public async Task A_clone_whose_load_fails_removes_the_network_it_made_and_stays_Created()
    {
        using var world = new World();
        var (source, template) = await world.TemplateAsync(new SandboxNetworkSpec { Mode = NetworkMode.Isolated });
        await using var _source = source;
        await using var clone = new FirecrackerHypervisor(world.Options(new() { ["FAKE_FC_EXIT_AT"] = "PUT /snapshot/load" }));
        await clone.CreateAsync("c0", world.Clone(template, new SandboxNetworkSpec { Mode = NetworkMode.Isolated }), Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => clone.StartAsync(Ct));

        Assert.Equal("snapshot-load", e.Step);
        Assert.Equal(SandboxState.Created, clone.State);
        Assert.Null(world.Networks.Get("c0"));
        Assert.False(File.Exists(world.NamespacePath("c0")));
    }

    [Fact]
    public async Task A_clone_asking_for_another_guest_address_than_the_templates_is_refused_at_step_template_before_any_network()
    {
        using var world = new World();
        var (source, template) = await world.TemplateAsync(new SandboxNetworkSpec { Mode = NetworkMode.Isolated });
        await using var _source = source;
        await using var clone = new FirecrackerHypervisor(world.Options());
        var other = new SandboxNetworkSpec { Mode = NetworkMode.Isolated, GuestAddress = InterfaceAddress.Parse("10.1.1.2/24", "test") };
        await clone.CreateAsync("c0", world.Clone(template, other), Ct);

        var e = await Assert.ThrowsAsync<SandboxStartException>(() => clone.StartAsync(Ct));

        Assert.Equal("template", e.Step);
        Assert.Contains("172.16.0.2/30", e.Message);
        Assert.Null(world.Networks.Get("c0"));
        Assert.False(File.Exists(world.NamespacePath("c0")));
    }

    [Fact]
    public async Task Jailed_clones_run_inside_their_own_network_namespace_and_stop_removes_the_chroot_and_the_network_of_one_only()
    {
        JailTestScope.RequireRoot();
        await using var scope = new JailTestScope();
        using var world = new World();
        var isolated = new SandboxNetworkSpec { Mode = NetworkMode.Isolated };
        var (source, template) = await world.TemplateAsync(isolated);
        await using var _source = source;
        var clones = new[] { "c0", "c1" }.Select(_ => new FirecrackerHypervisor(world.Options())).ToArray();
        try
        {
            for (var i = 0; i < clones.Length; i++)
            {
                await clones[i].CreateAsync($"c{i}", world.Clone(template, isolated) with { FirecrackerPath = scope.FirecrackerPath, Jail = scope.Settings() }, Ct);
                await clones[i].StartAsync(Ct);
            }

            for (var i = 0; i < clones.Length; i++)
            {
                var id = $"c{i}";
                var info = world.Networks.Get(id)!;
                Assert.Equal(world.NamespacePath(id), info.NamespacePath);
                // The jailer joined the clone's namespace (--netns) before it exec'd the VMM: the VMM's network
                // namespace is the one the sandbox network made, and the clone's TAP lives there.
                Assert.Equal(Path.GetFileName(info.NamespacePath), TestNetns.Run(["ip", "netns", "identify", clones[i].Pid!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)]).Trim());
                Assert.Contains(info.TapName!, world.InSandbox(id, "ip", "-o", "link", "show"));
                Assert.Equal(JailLayout.For(clones[i].Config.Jail!, clones[i].Config.FirecrackerPath, id).ExecutableInJail,
                    Kiln.Host.ProcFs.TryGetExecutable(clones[i].Pid!.Value));
            }

            await clones[0].StopAsync(Ct);

            Assert.False(File.Exists(world.NamespacePath("c0")));
            Assert.Null(world.Networks.Get("c0"));
            Assert.False(Directory.Exists(JailLayout.For(clones[0].Config.Jail!, clones[0].Config.FirecrackerPath, "c0").InstanceDirectory));
            Assert.Equal(SandboxState.Running, clones[1].State);
            Assert.True(File.Exists(world.NamespacePath("c1")));
        }
        finally
        {
            await SandboxTeardown.StopAllAsync(clones);
        }
        Assert.Empty(scope.LeftoverCgroups());
        Assert.Empty(scope.LeftoverMounts());
    }

    [Theory]
    [InlineData("console=ttyS0 ip=10.9.8.7::10.9.8.1:255.255.255.0::eth0:off reboot=k", "10.9.8.7/24")]
    [InlineData("ip=172.16.0.2::172.16.0.1:255.255.255.252::eth0:off", "172.16.0.2/30")]
    [InlineData("console=ttyS0 reboot=k", null)]
    [InlineData("ip=dhcp", null)]
    [InlineData("ip=10.0.0.2::10.0.0.1:255.0.255.0::eth0:off", null)]
    public void The_guest_address_of_a_template_is_read_from_its_boot_arguments_ip(string bootArgs, string? expected)
    {
        Assert.Equal(expected, FirecrackerHypervisor.RecordedGuestAddress(bootArgs)?.ToString());
    }
}
