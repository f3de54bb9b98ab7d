using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>A drive is a virtio drive (a host file) or a vhost-user drive (a socket), never both or neither, and a
/// PATCH only changes what its backend has. No recording covers these; they follow Firecracker's source.</summary>
public sealed class DriveBackendTests
{
    private const string InvalidConfig = "Drive config error: Unable to create the virtio block device: Invalid block config.";
    private const string WrongBackend = "Drive config error: Unable to patch the block device: Block: Running method expected different backend. Please verify the request arguments.";

    // src/vmm/src/devices/virtio/block/device.rs Block::new (VirtioBlockConfig / VhostUserBlockConfig TryFrom), and
    // BlockError::InvalidBlockConfig in block/mod.rs inside DriveError::CreateBlockDevice (vmm_config/drive.rs).
    [Theory]
    [InlineData("""{"drive_id": "d", "is_root_device": false}""")]
    [InlineData("""{"drive_id": "d", "is_root_device": false, "path_on_host": "PATH", "socket": "SOCK"}""")]
    [InlineData("""{"drive_id": "d", "is_root_device": false, "socket": "SOCK", "is_read_only": true}""")]
    [InlineData("""{"drive_id": "d", "is_root_device": false, "socket": "SOCK", "io_engine": "Sync"}""")]
    [InlineData("""{"drive_id": "d", "is_root_device": false, "socket": "SOCK", "rate_limiter": {"ops": {"size": 1, "refill_time": 1}}}""")]
    public async Task A_drive_that_is_neither_a_plain_file_nor_a_plain_vhost_user_socket_is_refused(string body)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        var answer = await fc.Put("/drives/d", body.Replace("PATH", dir.File("d.img"), StringComparison.Ordinal).Replace("SOCK", dir["vu.sock"], StringComparison.Ordinal));

        Assert.Equal(400, answer.Status);
        Assert.Equal(InvalidConfig, Fc.Fault(answer));
        Assert.Contains("\"drives\":[]", (await fc.Get("/vm/config")).Body);
    }

    // block/device.rs Block::config: a vhost-user drive reports no read-only flag, path or I/O engine.
    [Fact]
    public async Task A_vhost_user_drive_is_reported_without_read_only_flag_or_io_engine()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);

        await fc.Ok("PUT", "/drives/vu", $$"""{"drive_id": "vu", "is_root_device": false, "socket": "{{dir["vu.sock"]}}"}""");

        Assert.Contains($$"""{"drive_id":"vu","partuuid":null,"is_root_device":false,"cache_type":"Unsafe","is_read_only":null,"path_on_host":null,"rate_limiter":null,"io_engine":null,"socket":"{{dir["vu.sock"]}}"}""", (await fc.Get("/vm/config")).Body);
    }

    // src/vmm/src/rpc_interface.rs update_block_device: neither path_on_host nor rate_limiter is a vhost-user config
    // update, which a virtio drive refuses with BlockError::InvalidBlockBackend (block/device.rs update_config).
    [Fact]
    public async Task A_patch_naming_nothing_to_change_is_refused_for_a_file_backed_drive()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/drives/data", $$"""{"drive_id": "data", "is_root_device": false, "path_on_host": "{{dir.File("data.img")}}"}""");
        await fc.BootAsync();

        var answer = await fc.Patch("/drives/data", """{"drive_id": "data"}""");

        Assert.Equal(WrongBackend, Fc.Fault(answer));
    }

    // block/device.rs update_disk_image and update_rate_limiter: virtio-only; update_config: vhost-user only.
    [Fact]
    public async Task A_vhost_user_drive_takes_a_config_update_but_refuses_a_new_path_or_rate_limiter()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/drives/vu", $$"""{"drive_id": "vu", "is_root_device": false, "socket": "{{dir["vu.sock"]}}"}""");
        await fc.BootAsync();

        var path = await fc.Patch("/drives/vu", $$"""{"drive_id": "vu", "path_on_host": "{{dir.File("other.img")}}"}""");
        var limiter = await fc.Patch("/drives/vu", """{"drive_id": "vu", "rate_limiter": {"ops": {"size": 1, "refill_time": 1}}}""");
        var config = await fc.Patch("/drives/vu", """{"drive_id": "vu"}""");

        Assert.Equal(WrongBackend, Fc.Fault(path));
        Assert.Equal(WrongBackend, Fc.Fault(limiter));
        Assert.Equal(204, config.Status);
    }
}
