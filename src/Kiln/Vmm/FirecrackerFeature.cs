using Kiln.Api;

namespace Kiln.Vmm;

/// <summary>A Firecracker feature that needs a release newer than <see cref="SupportedFirecracker.Minimum"/>.</summary>
/// <param name="Name">What it is, as a sentence fragment ("memory hot-plug (virtio-mem)").</param>
/// <param name="Since">The first release that has it.</param>
public sealed record FirecrackerFeature(string Name, FirecrackerVersion Since)
{
    // Where each gate comes from (firecracker-microvm/firecracker on GitHub). Memory hot-plug: the feature branch was
    // merged into main by PR #5534 ("Merge Feature/virtio mem", merged 2025-11-25; tracking issue #5348, the API's
    // first PUT/GET /hotplug/memory in PR #5365 on that branch); that it first shipped in 1.14.0 is by inference from
    // the merge date and our 1.14 recordings, not read from a release note.
    /// <summary><c>PUT /hotplug/memory</c> (virtio-mem), Firecracker 1.14.</summary>
    public static FirecrackerFeature MemoryHotplug { get; } = new("memory hot-plug (virtio-mem)", new(1, 14, 0));

    // PCI: #5133 is the tracking issue ("[PCIe] Support PCIe in Firecracker"), not the change itself; the code landed
    // with PR #5364 ("Add PCI support on Firecracker", --enable-pci, merged), and a maintainer's comment on #5133 says
    // it shipped with the 1.13 release.
    /// <summary><c>--enable-pci</c> and hot-plug of drives, NICs and pmem after boot, Firecracker 1.13.</summary>
    public static FirecrackerFeature Pci { get; } = new("PCI (--enable-pci)", new(1, 13, 0));

    // vsock_override: PR #5323 ("feat(snapshot): allow vsock uds path override on restore", merged), answering issue
    // #3344. That 1.16.0 is its first release is by inference (third-party projects gate it on 1.16.0; a 1.15.1
    // LoadSnapshotConfig rejects the unknown field), not read from Firecracker's own release note.
    /// <summary><c>vsock_override</c> in <c>PUT /snapshot/load</c>, Firecracker 1.16.</summary>
    public static FirecrackerFeature VsockOverride { get; } = new("vsock_override on snapshot load", new(1, 16, 0));

    // The balloon's two free-page mechanisms (the `free_page_hinting` and `free_page_reporting` fields of PUT /balloon,
    // and /balloon/hinting/*) arrived together in Firecracker 1.14.0: its CHANGELOG.md's "[1.14.0] Added" section
    // (firecracker-microvm/firecracker, CHANGELOG.md). A release before it rejects the unknown fields with a 400 at
    // PUT /balloon, after the VMM is already running; the gate says so before anything starts. The 1.16.1 recordings
    // (tests/assets/transcripts/07-preboot-devices.json) still log hinting as a developer preview. The change itself is
    // PR #5491 ("virtio-balloon: Add free page reporting hinting", merged), tracked by issue #5474, titled for v1.14.0.

    /// <summary><c>free_page_hinting</c> on the balloon and <c>/balloon/hinting/*</c>, Firecracker 1.14.</summary>
    public static FirecrackerFeature BalloonFreePageHinting { get; } = new("balloon free page hinting", new(1, 14, 0));

    /// <summary><c>free_page_reporting</c> on the balloon, Firecracker 1.14.</summary>
    public static FirecrackerFeature BalloonFreePageReporting { get; } = new("balloon free page reporting", new(1, 14, 0));

    /// <summary>Whether <paramref name="version"/> has it.</summary>
    public bool IsAvailableIn(FirecrackerVersion version) => version >= Since;

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (Firecracker {Since} or newer)";
}
