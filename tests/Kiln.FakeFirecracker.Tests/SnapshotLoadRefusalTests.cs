using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>Ways a snapshot load fails that 09-snapshot-load does not record: each is answered 400 and then ends the
/// process with 1 (rpc_interface.rs load_snapshot sets fatal_error = Restore).</summary>
public sealed class SnapshotLoadRefusalTests
{
    private const string Prefix = "Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: ";

    private static async Task SnapshotWithoutVsock(TempDir dir)
    {
        await using var fc = await Fc.StartAsync(dir);
        await fc.BootAsync();
        await fc.Ok("PATCH", "/vm", """{"state": "Paused"}""");
        await fc.Ok("PUT", "/snapshot/create", $$"""{"snapshot_path": "{{dir["snap"]}}", "mem_file_path": "{{dir["mem"]}}"}""");
    }

    private static async Task AssertLoadFailsAndEndsTheProcess(TempDir dir, string body, string fault)
    {
        await using var fc = await Fc.StartAsync(dir, ["--id", "loader"], socket: "api2.sock");

        var answer = await fc.Put("/snapshot/load", body);

        Assert.Equal(fault, Fc.Fault(answer));
        Assert.Equal(1, await fc.Process.WaitExitAsync(TimeSpan.FromSeconds(20), Fc.Ct));
    }

    // src/vmm/src/snapshot/mod.rs SnapshotError::InvalidFormatVersion, inside persist.rs SnapshotStateFromFileError::Load.
    [Fact]
    public async Task A_state_file_of_another_data_version_is_refused()
    {
        using var dir = new TempDir();
        await SnapshotWithoutVsock(dir);
        var text = await File.ReadAllTextAsync(dir["snap"], Fc.Ct);
        await File.WriteAllTextAsync(dir["snap"], text.Replace(" v10.0.0\n", " v9.0.0\n", StringComparison.Ordinal), Fc.Ct);

        await AssertLoadFailsAndEndsTheProcess(dir,
            $$$"""{"snapshot_path": "{{{dir["snap"]}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{dir["mem"]}}}"}}""",
            Prefix + "Failed to load snapshot state from file: Invalid data version: 9.0.0");
    }

    // src/vmm/src/persist.rs SnapshotStateFromFileError::UnknownVsockDevice: a vsock_override for a snapshot without vsock.
    [Fact]
    public async Task A_vsock_override_for_a_snapshot_without_vsock_is_refused()
    {
        using var dir = new TempDir();
        await SnapshotWithoutVsock(dir);

        await AssertLoadFailsAndEndsTheProcess(dir,
            $$$"""{"snapshot_path": "{{{dir["snap"]}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{dir["mem"]}}}"}, "vsock_override": {"uds_path": "{{{dir["v.sock"]}}}"}}""",
            Prefix + "Unknown Vsock Device.");
    }

    // src/vmm/src/persist.rs: a Uffd backend whose socket exists but has no listener (ECONNREFUSED).
    [Fact]
    public async Task A_uffd_backend_path_that_is_not_a_listening_socket_is_refused()
    {
        using var dir = new TempDir();
        await SnapshotWithoutVsock(dir);

        await AssertLoadFailsAndEndsTheProcess(dir,
            $$$"""{"snapshot_path": "{{{dir["snap"]}}}", "mem_backend": {"backend_type": "Uffd", "backend_path": "{{{dir["mem"]}}}"}}""",
            "Load snapshot error: Failed to restore from snapshot: Failed to load guest memory: Error creating guest memory from uffd: Failed to connect to UDS Unix stream: Connection refused (os error 111)");
    }
}
