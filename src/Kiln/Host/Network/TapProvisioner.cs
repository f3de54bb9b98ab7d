// Creates and removes TAP devices for microVMs with iproute2's `ip`, run without a shell (HostCommand). Why `ip`
// and not rtnetlink from .NET: TAP creation is TUNSETIFF+TUNSETPERSIST, but everything around it — links in another
// network namespace (setns is per thread, and .NET moves async work between threads), addresses, veth pairs — is
// nested rtnetlink attributes that iproute2 already gets right on every kernel; a few ms per call at start-up is
// cheap next to a boot. Names are validated (InterfaceName) before they become arguments.
namespace Kiln.Host.Network;

/// <summary>What TAP to create.</summary>
/// <param name="Name">The interface name (1–15 bytes).</param>
public sealed record TapSpec(string Name)
{
    /// <summary>The address of the host side, e.g. <c>172.16.0.1/30</c>; none when null.</summary>
    public InterfaceAddress? HostAddress { get; init; }

    /// <summary>The network namespace to create it in (a path such as <c>/run/netns/NAME</c>); null: Kiln's own.</summary>
    public string? NetworkNamespacePath { get; init; }

    /// <summary>Throws naming the first bad property.</summary>
    /// <exception cref="NetworkConfigurationException">A bad name or namespace path.</exception>
    public void Validate()
    {
        InterfaceName.Validate(Name, nameof(Name));
        if (NetworkNamespacePath is { } netns && (!Path.IsPathFullyQualified(netns) || netns.Contains('\0', StringComparison.Ordinal)))
            throw new NetworkConfigurationException(nameof(NetworkNamespacePath), $"'{netns}' is not an absolute path");
    }
}

/// <summary>Options of <see cref="TapProvisioner"/>.</summary>
public sealed record TapProvisionerOptions
{
    /// <summary>Where Kiln records the TAPs it created (one file per TAP). Default <c>/run/kiln/net</c>.</summary>
    public string StateDirectory { get; init; } = "/run/kiln/net";
}

/// <summary>Creates TAP devices for sandboxes and removes only those it created.</summary>
public sealed class TapProvisioner
{
    private readonly TapOwnership _ownership;

    /// <summary>A provisioner recording ownership in <see cref="TapProvisionerOptions.StateDirectory"/>.</summary>
    public TapProvisioner(TapProvisionerOptions? options = null)
    {
        _ownership = new TapOwnership((options ?? new TapProvisionerOptions()).StateDirectory);
    }

    /// <summary>
    /// Creates the TAP for sandbox <paramref name="owner"/>, sets it up and addresses its host side. Everything done is
    /// undone when a step fails.
    /// </summary>
    /// <exception cref="NetworkConfigurationException">A bad name, path or owner, before anything changes.</exception>
    /// <exception cref="TapOwnedByAnotherSandboxException">Another sandbox owns that name.</exception>
    /// <exception cref="TapNotCreatedByKilnException">A device of that name exists that Kiln did not create.</exception>
    /// <exception cref="HostCommandException"><c>ip</c> failed.</exception>
    public async Task<ProvisionedTap> CreateAsync(TapSpec spec, string owner, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        TapOwnership.ValidateOwner(owner);
        if (spec.NetworkNamespacePath is { } ns && !File.Exists(ns))
            throw new NetworkConfigurationException(nameof(TapSpec.NetworkNamespacePath), $"'{ns}' does not exist");
        var tap = new ProvisionedTap(spec.Name, owner, spec.NetworkNamespacePath, spec.HostAddress);
        var retry = _ownership.Claim(tap);
        var created = false;
        try
        {
            if (await ExistsAsync(tap.Name, tap.NetworkNamespacePath, cancellationToken).ConfigureAwait(false))
            {
                // Our own record from an earlier, interrupted start: the device is ours to replace.
                if (!retry)
                    throw new TapNotCreatedByKilnException(tap.Name, "a device of that name exists; pass it as a TAP the user made instead");
                await DeleteDeviceAsync(tap, cancellationToken).ConfigureAwait(false);
            }
            await IpAsync(tap.NetworkNamespacePath, cancellationToken, "tuntap", "add", "dev", tap.Name, "mode", "tap").ConfigureAwait(false);
            created = true;
            AfterStep?.Invoke("created");
            if (tap.HostAddress is { } address)
                await IpAsync(tap.NetworkNamespacePath, cancellationToken, "addr", "add", address.ToString(), "dev", tap.Name).ConfigureAwait(false);
            AfterStep?.Invoke("addressed");
            await IpAsync(tap.NetworkNamespacePath, cancellationToken, "link", "set", "dev", tap.Name, "up").ConfigureAwait(false);
            return tap;
        }
        catch (Exception e)
        {
            // The step's failure is what the caller gets; a clean-up that fails too rides along (CleanupFailures).
            if (created)
                await CleanupFailures.RunAsync(e, () => DeleteDeviceAsync(tap, CancellationToken.None)).ConfigureAwait(false);
            CleanupFailures.Run(e, () => _ownership.Release(tap));
            throw;
        }
    }

    /// <summary>Removes a TAP this sandbox created, and its record. A TAP already gone (its namespace deleted) only loses its record.</summary>
    /// <exception cref="TapNotCreatedByKilnException">No record says Kiln created it: the device is left alone.</exception>
    /// <exception cref="TapOwnedByAnotherSandboxException">It belongs to another sandbox: left alone.</exception>
    public async Task RemoveAsync(string name, string owner, string? networkNamespacePath = null, CancellationToken cancellationToken = default)
    {
        InterfaceName.Validate(name, nameof(name));
        var record = _ownership.Find(name, networkNamespacePath)
            ?? throw new TapNotCreatedByKilnException(name, "Kiln has no record of creating it, so it is not Kiln's to remove");
        if (record.Owner != owner)
            throw new TapOwnedByAnotherSandboxException(name, record.Owner);
        await DeleteDeviceAsync(record, cancellationToken).ConfigureAwait(false);
        _ownership.Release(record);
    }

    /// <summary>Tests: called after each step (<c>created</c>, <c>addressed</c>) so a failure can be injected there.</summary>
    internal Action<string>? AfterStep { get; set; }

    /// <summary>The sandbox that owns a TAP Kiln created, or null when Kiln did not create it.</summary>
    public string? OwnerOf(string name, string? networkNamespacePath = null) => _ownership.Find(name, networkNamespacePath)?.Owner;

    /// <summary>Every TAP Kiln has a record of.</summary>
    public IReadOnlyList<ProvisionedTap> List() => _ownership.All();

    /// <summary>Removes every TAP <paramref name="owner"/> has (its clean-up after a crash).</summary>
    public async Task RemoveAllOfAsync(string owner, CancellationToken cancellationToken = default)
    {
        foreach (var tap in _ownership.All().Where(t => t.Owner == owner))
        {
            await DeleteDeviceAsync(tap, cancellationToken).ConfigureAwait(false);
            _ownership.Release(tap);
        }
    }

    internal static async Task<bool> ExistsAsync(string name, string? netns, CancellationToken cancellationToken)
    {
        if (netns is null)
            return Directory.Exists(Path.Combine("/sys/class/net", name));
        var list = await HostCommand.RunAsync("ip", ["-o", "link", "show"], netns, cancellationToken).ConfigureAwait(false);
        return list.Split('\n').Any(line => line.Split(": ") is [_, var ifname, ..] && (ifname == name || ifname.StartsWith(name + "@", StringComparison.Ordinal)));
    }

    private static async Task DeleteDeviceAsync(ProvisionedTap tap, CancellationToken cancellationToken)
    {
        // A deleted namespace took its devices with it.
        if (tap.NetworkNamespacePath is { } ns && !File.Exists(ns))
            return;
        if (!await ExistsAsync(tap.Name, tap.NetworkNamespacePath, cancellationToken).ConfigureAwait(false))
            return;
        await IpAsync(tap.NetworkNamespacePath, cancellationToken, "link", "del", "dev", tap.Name).ConfigureAwait(false);
    }

    private static Task<string> IpAsync(string? netns, CancellationToken cancellationToken, params string[] args) =>
        HostCommand.RunAsync("ip", args, netns, cancellationToken);
}
