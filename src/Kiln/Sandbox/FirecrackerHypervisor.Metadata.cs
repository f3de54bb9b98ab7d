// The metadata document (MMDS) of a running sandbox, through the driver: its cross-process lock and state checks in
// front of the Vm layer's PUT/PATCH/GET /mmds. The first document is HypervisorConfig.Metadata.Document, given before
// boot; these change it afterwards.
using System.Text.Json.Nodes;

namespace Kiln.Sandbox;

public sealed partial class FirecrackerHypervisor
{
    /// <summary>The metadata document as Firecracker holds it (GET /mmds).</summary>
    /// <exception cref="SandboxConfigurationException">The sandbox has no metadata service (<see cref="HypervisorConfig.Metadata"/>).</exception>
    /// <exception cref="SandboxStateException">Neither Running nor Paused.</exception>
    public async Task<JsonNode> GetMetadataAsync(CancellationToken cancellationToken = default)
    {
        JsonNode? document = null;
        await MetadataAsync("read the metadata", async (vm, ct) => document = await vm.GetMetadataAsync(ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return document!;
    }

    /// <summary>Replaces the metadata document (PUT /mmds); returns it as Firecracker then holds it.</summary>
    /// <exception cref="SandboxConfigurationException">The sandbox has no metadata service (<see cref="HypervisorConfig.Metadata"/>).</exception>
    /// <exception cref="SandboxStateException">Neither Running nor Paused.</exception>
    public async Task<JsonNode> PutMetadataAsync(JsonObject document, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(document);
        JsonNode? result = null;
        await MetadataAsync("replace the metadata", async (vm, ct) =>
        {
            await vm.PutMetadataAsync(document, ct).ConfigureAwait(false);
            result = await vm.GetMetadataAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    /// <summary>Merges <paramref name="patch"/> into the metadata document (PATCH /mmds, RFC 7396: null removes a key); returns the result.</summary>
    /// <exception cref="SandboxConfigurationException">The sandbox has no metadata service (<see cref="HypervisorConfig.Metadata"/>).</exception>
    /// <exception cref="SandboxStateException">Neither Running nor Paused.</exception>
    public async Task<JsonNode> PatchMetadataAsync(JsonObject patch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(patch);
        JsonNode? result = null;
        await MetadataAsync("patch the metadata", async (vm, ct) =>
        {
            await vm.PatchMetadataAsync(patch, ct).ConfigureAwait(false);
            result = await vm.GetMetadataAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    private Task MetadataAsync(string operation, Func<Kiln.Vm.Microvm, CancellationToken, Task> action, CancellationToken cancellationToken) =>
        LockedAsync(async ct =>
        {
            // Without it no interface answers the guest: a document stored anyway would be read by no one.
            if (Config.Metadata is null)
                throw new SandboxConfigurationException(nameof(HypervisorConfig.Metadata), "is not configured: the sandbox has no metadata service (give it a Network and Metadata)") { SandboxId = SandboxId };
            RequireState(operation, SandboxState.Running, SandboxState.Paused);
            await action(RequireVm(), ct).ConfigureAwait(false);
        }, cancellationToken);
}
