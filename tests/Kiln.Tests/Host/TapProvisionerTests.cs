using Kiln.Host.Network;
using Kiln.Tests.Support;

namespace Kiln.Tests.Host;

public sealed class TapProvisionerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TapProvisioner Provisioner(TempRoot root) => new(new TapProvisionerOptions { StateDirectory = root.Combine("net") });

    [Fact]
    public async Task A_tap_is_created_up_and_addressed_in_its_namespace_and_removed_with_its_record()
    {
        using var root = new TempRoot();
        using var netns = TestNetns.Create();
        var taps = Provisioner(root);

        var tap = await taps.CreateAsync(new TapSpec("ktap0") { NetworkNamespacePath = netns.Path, HostAddress = InterfaceAddress.Parse("172.16.0.1/30", "HostAddress") }, "sb-a", Ct);
        var link = netns.Exec("ip", "-o", "link", "show", "dev", "ktap0");
        var addresses = netns.Exec("ip", "-o", "-4", "addr", "show", "dev", "ktap0");
        var owner = taps.OwnerOf("ktap0", netns.Path);
        await taps.RemoveAsync("ktap0", "sb-a", netns.Path, Ct);

        Assert.Contains("UP", link);
        Assert.Contains("172.16.0.1/30", addresses);
        Assert.Equal("sb-a", owner);
        Assert.False(netns.HasLink("ktap0"));
        Assert.Null(taps.OwnerOf("ktap0", netns.Path));
        Assert.Empty(taps.List());
        Assert.Equal(tap, new ProvisionedTap("ktap0", "sb-a", netns.Path, InterfaceAddress.Parse("172.16.0.1/30", "x")));
    }

    [Theory]
    [InlineData("a-name-of-16-byt", "longer than 15 bytes")]
    [InlineData("", "is empty")]
    [InlineData("-x", "not a usable")]
    [InlineData("tap 0", "has ' '")]
    [InlineData("tap/0", "has '/'")]
    public async Task A_bad_name_is_refused_before_anything_changes(string name, string reason)
    {
        using var root = new TempRoot();
        var taps = Provisioner(root);

        var error = await Assert.ThrowsAsync<NetworkConfigurationException>(() => taps.CreateAsync(new TapSpec(name), "sb", Ct));

        Assert.Equal("Name", error.PropertyName);
        Assert.Contains(reason, error.Message);
        Assert.False(Directory.Exists(root.Combine("net")));
    }

    [Fact]
    public async Task Two_sandboxes_cannot_share_a_tap()
    {
        using var root = new TempRoot();
        using var netns = TestNetns.Create();
        var taps = Provisioner(root);
        await taps.CreateAsync(new TapSpec("kshared") { NetworkNamespacePath = netns.Path }, "first", Ct);

        var error = await Assert.ThrowsAsync<TapOwnedByAnotherSandboxException>(
            () => taps.CreateAsync(new TapSpec("kshared") { NetworkNamespacePath = netns.Path }, "second", Ct));
        var removeByOther = await Assert.ThrowsAsync<TapOwnedByAnotherSandboxException>(() => taps.RemoveAsync("kshared", "second", netns.Path, Ct));

        Assert.Equal(("kshared", "first"), (error.TapName, error.Owner));
        Assert.Equal("first", removeByOther.Owner);
        Assert.True(netns.HasLink("kshared"));
        Assert.Equal("first", taps.OwnerOf("kshared", netns.Path));
    }

    [Fact]
    public async Task A_tap_kiln_did_not_create_is_neither_taken_over_nor_removed()
    {
        using var root = new TempRoot();
        using var netns = TestNetns.Create();
        netns.Exec("ip", "tuntap", "add", "dev", "kuser", "mode", "tap");
        var taps = Provisioner(root);

        await Assert.ThrowsAsync<TapNotCreatedByKilnException>(() => taps.CreateAsync(new TapSpec("kuser") { NetworkNamespacePath = netns.Path }, "sb", Ct));
        await Assert.ThrowsAsync<TapNotCreatedByKilnException>(() => taps.RemoveAsync("kuser", "sb", netns.Path, Ct));

        Assert.True(netns.HasLink("kuser"));
        Assert.Null(taps.OwnerOf("kuser", netns.Path));
    }

    [Theory]
    [InlineData("created")]
    [InlineData("addressed")]
    public async Task A_failed_step_leaves_neither_a_device_nor_a_record(string failingStep)
    {
        using var root = new TempRoot();
        using var netns = TestNetns.Create();
        var taps = Provisioner(root);
        taps.AfterStep = step =>
        {
            if (step == failingStep)
                throw new IOException("injected");
        };

        await Assert.ThrowsAsync<IOException>(() => taps.CreateAsync(
            new TapSpec("kfail") { NetworkNamespacePath = netns.Path, HostAddress = InterfaceAddress.Parse("172.16.9.1/30", "x") }, "sb", Ct));

        Assert.False(netns.HasLink("kfail"));
        Assert.Empty(taps.List());
    }

    [Fact]
    public async Task The_same_sandbox_retrying_after_an_interrupted_start_replaces_its_own_tap()
    {
        using var root = new TempRoot();
        using var netns = TestNetns.Create();
        var taps = Provisioner(root);
        await taps.CreateAsync(new TapSpec("kretry") { NetworkNamespacePath = netns.Path }, "sb", Ct);

        var again = await taps.CreateAsync(new TapSpec("kretry") { NetworkNamespacePath = netns.Path }, "sb", Ct);
        await taps.RemoveAllOfAsync("sb", Ct);

        Assert.Equal("sb", again.Owner);
        Assert.False(netns.HasLink("kretry"));
        Assert.Empty(taps.List());
    }

    [Fact]
    public async Task A_tap_whose_namespace_is_gone_only_loses_its_record()
    {
        using var root = new TempRoot();
        var netns = TestNetns.Create();
        var taps = Provisioner(root);
        await taps.CreateAsync(new TapSpec("kgone") { NetworkNamespacePath = netns.Path }, "sb", Ct);
        netns.Dispose();

        await taps.RemoveAsync("kgone", "sb", netns.Path, Ct);

        Assert.Empty(taps.List());
    }

    [Theory]
    [InlineData("172.16.0.1/30", true)]
    [InlineData("10.0.0.2/24", true)]
    [InlineData("10.0.0.2", false)]
    [InlineData("10.0.0.2/31", false)]
    [InlineData("10.0.0.2/0", false)]
    [InlineData("::1/64", false)]
    [InlineData("10.0.2/24", false)]
    [InlineData("10.0.0.2/+4", false)]
    public void Interface_addresses_are_ipv4_with_a_prefix_of_1_to_30(string text, bool valid)
    {
        Assert.Equal(valid, InterfaceAddress.TryParse(text, out var parsed));
        if (valid)
            Assert.Equal(text, parsed!.ToString());
    }

    [Fact]
    public void An_interface_address_knows_its_mask_and_network()
    {
        var address = InterfaceAddress.Parse("172.16.0.2/30", "x");

        Assert.Equal(("255.255.255.252", "172.16.0.0/30"), (address.Netmask.ToString(), address.Network));
        Assert.True(address.SameNetwork(System.Net.IPAddress.Parse("172.16.0.1")));
        Assert.False(address.SameNetwork(System.Net.IPAddress.Parse("172.16.0.5")));
    }

    [Fact]
    public async Task A_failed_step_whose_clean_up_fails_too_throws_the_steps_failure_with_the_clean_up_failure_attached()
    {
        using var root = new TempRoot();
        using var netns = TestNetns.Create();
        var taps = Provisioner(root);
        taps.AfterStep = step =>
        {
            if (step != "created")
                return;
            // The record replaced by a directory: releasing it (the clean-up) cannot read or delete it.
            var record = Assert.Single(Directory.GetFiles(root.Combine("net"), "tap-*kclean"));
            File.Delete(record);
            Directory.CreateDirectory(Path.Combine(record, "blocker"));
            throw new IOException("injected");
        };

        var e = await Assert.ThrowsAsync<IOException>(() => taps.CreateAsync(new TapSpec("kclean") { NetworkNamespacePath = netns.Path }, "sb", Ct));

        Assert.Equal("injected", e.Message);
        Assert.Single(CleanupFailures.Of(e));
        Assert.False(netns.HasLink("kclean"));
    }
}
