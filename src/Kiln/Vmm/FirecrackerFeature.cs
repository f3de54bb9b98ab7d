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

    // The balloon's two free-page mechanisms (the `free_page_hinting` and `free_page_reporting` fields of PUT /balloon,
    // and /balloon/hinting/*) arrived together in Firecracker 1.14.0: its CHANGELOG.md's "[1.14.0] Added" section
    // (firecracker-microvm/firecracker, CHANGELOG.md). A release before it rejects the unknown fields with a 400 at
    // PUT /balloon, after the VMM is already running; the gate says so before anything starts. The 1.16.1 recordings
    // (tests/assets/transcripts/07-preboot-devices.json) still log hinting as a developer preview.

    /// <summary><c>free_page_hinting</c> on the balloon and <c>/balloon/hinting/*</c>, Firecracker 1.14.</summary>
    public static FirecrackerFeature BalloonFreePageHinting { get; } = new("balloon free page hinting", new(1, 14, 0));

    /// <summary><c>free_page_reporting</c> on the balloon, Firecracker 1.14.</summary>
    public static FirecrackerFeature BalloonFreePageReporting { get; } = new("balloon free page reporting", new(1, 14, 0));

    /// <summary>Whether <paramref name="version"/> has it.</summary>
    public bool IsAvailableIn(FirecrackerVersion version) => version >= Since;

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (Firecracker {Since} or newer)";
}
