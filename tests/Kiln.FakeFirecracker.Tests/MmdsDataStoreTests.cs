using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>The MMDS data store and its configuration, where no recording shows the behaviour.</summary>
public sealed class MmdsDataStoreTests
{
    private const string NotInitialized = "MMDS error: The MMDS data store is not initialized.";

    // src/vmm/src/mmds/data_store.rs Mmds::patch_data (check_data_store_initialized): only a PUT fills the store;
    // PUT /mmds/config creates it empty (resources.rs locked_mmds_or_default), which is not enough.
    [Fact]
    public async Task MMDS_data_cannot_be_patched_before_it_was_put_even_once_MMDS_is_configured()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        var bare = await fc.Patch("/mmds", """{"a": 1}""");
        await fc.Ok("PUT", "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0"}""");
        await fc.Ok("PUT", "/mmds/config", """{"network_interfaces": ["eth0"], "version": "V2"}""");
        var configured = await fc.Patch("/mmds", """{"a": 1}""");
        await fc.Ok("PUT", "/mmds", """{"a": 1}""");
        await fc.Ok("PATCH", "/mmds", """{"b": 2}""");

        Assert.Equal(NotInitialized, Fc.Fault(bare));
        Assert.Equal(NotInitialized, Fc.Fault(configured));
        Assert.Equal("""{"a":1,"b":2}""", (await fc.Get("/mmds")).Body);
    }

    [Fact]
    public async Task MMDS_data_cannot_be_patched_after_boot_before_it_was_put()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.BootAsync();

        var patch = await fc.Patch("/mmds", """{"a": 1}""");

        Assert.Equal(NotInitialized, Fc.Fault(patch));
        Assert.Equal("{}", (await fc.Get("/mmds")).Body);
    }

    // src/vmm/src/resources.rs set_mmds_network_stack_config checks the address (utils::net::ipv4addr::
    // is_link_local_valid: 169.254.0.0/16 without 169.254.0.x and 169.254.255.x) before the interface list.
    [Theory]
    [InlineData("169.254.0.5", "[]", "MMMDS config error: The MMDS IPv4 address is not link local.")]
    [InlineData("169.254.255.1", "[\"eth0\"]", "MMMDS config error: The MMDS IPv4 address is not link local.")]
    [InlineData("169.254.1.1", "[]", "MMMDS config error: The list of network interface IDs that allow forwarding MMDS requests is empty.")]
    [InlineData("169.254.1.1", "[\"eth9\"]", "MMMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.")]
    public async Task MMDS_config_checks_the_address_before_the_interfaces(string address, string interfaces, string fault)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0"}""");

        var answer = await fc.Put("/mmds/config", $$"""{"network_interfaces": {{interfaces}}, "ipv4_address": "{{address}}", "version": "V2"}""");

        Assert.Equal(fault, Fc.Fault(answer));
    }
}
