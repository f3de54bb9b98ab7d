using Kiln.Api;

namespace Kiln.Vmm;

/// <summary>A Firecracker feature that needs a release newer than <see cref="SupportedFirecracker.Minimum"/>.</summary>
/// <param name="Name">What it is, as a sentence fragment ("memory hot-plug (virtio-mem)").</param>
/// <param name="Since">The first release that has it.</param>
public sealed record FirecrackerFeature(string Name, FirecrackerVersion Since)
{
    /// <summary><c>PUT /hotplug/memory</c> (virtio-mem), Firecracker 1.14.</summary>
    public static FirecrackerFeature MemoryHotplug { get; } = new("memory hot-plug (virtio-mem)", new(1, 14, 0));

    /// <summary><c>--enable-pci</c> and hot-plug of drives, NICs and pmem after boot, Firecracker 1.13.</summary>
    public static FirecrackerFeature Pci { get; } = new("PCI (--enable-pci)", new(1, 13, 0));

    /// <summary><c>vsock_override</c> in <c>PUT /snapshot/load</c>, Firecracker 1.16.</summary>
    public static FirecrackerFeature VsockOverride { get; } = new("vsock_override on snapshot load", new(1, 16, 0));

    /// <summary>Whether <paramref name="version"/> has it.</summary>
    public bool IsAvailableIn(FirecrackerVersion version) => version >= Since;

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (Firecracker {Since} or newer)";
}
