// Everything a Firecracker microVM is configured with before it boots, as one immutable record: the API sequence
// (BootPlan) and the --config-file document (ConfigFile) are both derived from it, so they cannot drift apart.
using System.Text;
using Kiln.Api;

namespace Kiln.Vm;

/// <summary>One microVM's boot-time configuration, validated before any process starts.</summary>
public sealed record MachineDescription
{
    /// <summary>Kernel, initrd and kernel command line.</summary>
    public required BootSource BootSource { get; init; }

    /// <summary>vCPUs and memory.</summary>
    public required MachineConfiguration MachineConfig { get; init; }

    /// <summary>Drives, network interfaces and the vsock device, in attach order.</summary>
    public IReadOnlyList<MachineDevice> Devices { get; init; } = [];

    /// <summary>The virtio-mem region for memory hot-plug, if any.</summary>
    public MemoryHotplugConfig? MemoryHotplug { get; init; }

    /// <summary>The balloon device, if any.</summary>
    public Balloon? Balloon { get; init; }

    /// <summary>The entropy (virtio-rng) device, if any.</summary>
    public EntropyDevice? Entropy { get; init; }

    /// <summary>MMDS (its interfaces must be among <see cref="Devices"/>), if any.</summary>
    public MmdsConfig? Mmds { get; init; }

    /// <summary>
    /// The metadata document the guest finds from its first instruction on (needs <see cref="Mmds"/>): PUT before
    /// InstanceStart on the API path, Firecracker's <c>--metadata</c> file with a config file.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject? MmdsDocument { get; init; }

    /// <summary>
    /// Run the VMM under Firecracker's jailer (docs/jail.md); directly when null. Paths in the description are host
    /// paths: the boot makes the files visible inside the chroot and gives Firecracker their paths there.
    /// </summary>
    public Kiln.Vmm.JailSettings? Jail { get; init; }

    /// <summary>The drives, in attach order.</summary>
    public IEnumerable<Drive> Drives => Devices.OfType<MachineDrive>().Select(d => d.Drive);

    /// <summary>The network interfaces, in attach order.</summary>
    public IEnumerable<NetworkInterface> NetworkInterfaces => Devices.OfType<MachineNetworkInterface>().Select(n => n.Interface);

    /// <summary>The vsock device, if any.</summary>
    public Vsock? Vsock => Devices.OfType<MachineVsock>().Select(v => v.Vsock).FirstOrDefault();

    /// <summary>
    /// Refuses what Firecracker would refuse without looking at files (those it checks itself, with its own fault
    /// message): names the bad property.
    /// </summary>
    /// <exception cref="MachineDescriptionException">A property is missing or out of range.</exception>
    public void Validate()
    {
        if (BootSource is null)
            throw new MachineDescriptionException(nameof(BootSource), "is required");
        if (string.IsNullOrWhiteSpace(BootSource.KernelImagePath))
            throw new MachineDescriptionException($"{nameof(BootSource)}.{nameof(Api.BootSource.KernelImagePath)}", "is empty");
        if (MachineConfig is null)
            throw new MachineDescriptionException(nameof(MachineConfig), "is required");
        // Firecracker's limits: 1 to 32 vCPUs (MAX_SUPPORTED_VCPUS), at least 1 MiB of memory.
        if (MachineConfig.VcpuCount is < 1 or > 32)
            throw new MachineDescriptionException($"{nameof(MachineConfig)}.{nameof(MachineConfiguration.VcpuCount)}", $"{MachineConfig.VcpuCount} is outside 1 to 32");
        if (MachineConfig.MemSizeMib < 1)
            throw new MachineDescriptionException($"{nameof(MachineConfig)}.{nameof(MachineConfiguration.MemSizeMib)}", $"{MachineConfig.MemSizeMib} MiB is too little");
        ValidateDevices();
        if (Jail is not null)
        {
            // Not mapped into a chroot: a vhost-user backend's socket is the backend's, which Kiln neither starts
            // nor could move inside the jail.
            if (Drives.Any(d => d.Socket is not null))
                throw new MachineDescriptionException(nameof(Jail), "a jailed microVM has no vhost-user drives yet");
        }
        if (Balloon is { } balloon && balloon.AmountMib > MachineConfig.MemSizeMib)
            throw new MachineDescriptionException($"{nameof(Balloon)}.{nameof(Api.Balloon.AmountMib)}", $"{balloon.AmountMib} MiB is more than the guest's {MachineConfig.MemSizeMib} MiB");
    }

    private void ValidateDevices()
    {
        var driveIds = new HashSet<string>(StringComparer.Ordinal);
        var ifaceIds = new HashSet<string>(StringComparer.Ordinal);
        var roots = 0;
        var vsocks = 0;
        for (var i = 0; i < Devices.Count; i++)
        {
            var at = $"{nameof(Devices)}[{i}]";
            switch (Devices[i])
            {
                case MachineDrive { Drive: var drive }:
                    ResourceId($"{at}.Drive.{nameof(Drive.DriveId)}", drive.DriveId);
                    if (!driveIds.Add(drive.DriveId))
                        throw new MachineDescriptionException($"{at}.Drive.{nameof(Drive.DriveId)}", $"'{drive.DriveId}' is used twice");
                    if (string.IsNullOrWhiteSpace(drive.PathOnHost) && drive.Socket is null)
                        throw new MachineDescriptionException($"{at}.Drive.{nameof(Drive.PathOnHost)}", "is empty");
                    CheckLimiter($"{at}.Drive.{nameof(Drive.RateLimiter)}", drive.RateLimiter);
                    if (drive.IsRootDevice && ++roots > 1)
                        throw new MachineDescriptionException($"{at}.Drive.{nameof(Drive.IsRootDevice)}", "a microVM has at most one root device");
                    break;
                case MachineNetworkInterface { Interface: var iface }:
                    ResourceId($"{at}.Interface.{nameof(NetworkInterface.IfaceId)}", iface.IfaceId);
                    if (!ifaceIds.Add(iface.IfaceId))
                        throw new MachineDescriptionException($"{at}.Interface.{nameof(NetworkInterface.IfaceId)}", $"'{iface.IfaceId}' is used twice");
                    if (string.IsNullOrEmpty(iface.HostDevName) || Encoding.UTF8.GetByteCount(iface.HostDevName) > 15)
                        throw new MachineDescriptionException($"{at}.Interface.{nameof(NetworkInterface.HostDevName)}", $"'{iface.HostDevName}' must be 1 to 15 bytes (IFNAMSIZ)");
                    CheckLimiter($"{at}.Interface.{nameof(NetworkInterface.RxRateLimiter)}", iface.RxRateLimiter);
                    CheckLimiter($"{at}.Interface.{nameof(NetworkInterface.TxRateLimiter)}", iface.TxRateLimiter);
                    break;
                case MachineVsock { Vsock: var vsock }:
                    if (++vsocks > 1)
                        throw new MachineDescriptionException(at, "a microVM has at most one vsock device");
                    if (vsock.GuestCid < 3)
                        throw new MachineDescriptionException($"{at}.Vsock.{nameof(Api.Vsock.GuestCid)}", $"{vsock.GuestCid} is reserved; guest CIDs start at 3");
                    if (!UnixSocketPath.IsValid(vsock.UdsPath))
                        throw new MachineDescriptionException($"{at}.Vsock.{nameof(Api.Vsock.UdsPath)}", $"'{vsock.UdsPath}' is not a Unix socket path (1 to {UnixSocketPath.MaxLength} bytes)");
                    break;
                default:
                    throw new MachineDescriptionException(at, "is null");
            }
        }
        if (Mmds is { } mmds)
        {
            foreach (var id in mmds.NetworkInterfaces)
            {
                if (!ifaceIds.Contains(id))
                    throw new MachineDescriptionException($"{nameof(Mmds)}.{nameof(MmdsConfig.NetworkInterfaces)}", $"'{id}' is not one of the network interfaces");
            }
        }
        if (MmdsDocument is not null && Mmds is null)
            throw new MachineDescriptionException(nameof(MmdsDocument), "needs Mmds: the guest reads the document through an MMDS-enabled interface");
    }

    /// <summary>
    /// Refuses a rate limiter Firecracker would silently turn into no limit (<see cref="RateLimiterRules"/>),
    /// naming <c>property.Bucket.Field</c>.
    /// </summary>
    /// <exception cref="MachineDescriptionException">An unusable bucket.</exception>
    public static void CheckLimiter(string property, RateLimiter? limiter)
    {
        if (RateLimiterRules.Check(limiter) is { } problem)
            throw new MachineDescriptionException($"{property}.{problem.Field}", problem.Problem);
    }

    /// <summary>
    /// As <see cref="CheckLimiter"/> for a PATCH after boot, where a <see cref="RateLimiterRules.Removal"/> bucket
    /// removes that bucket's limit.
    /// </summary>
    /// <exception cref="MachineDescriptionException">An unusable bucket.</exception>
    public static void CheckLimiterUpdate(string property, RateLimiter? limiter)
    {
        if (RateLimiterRules.CheckUpdate(limiter) is { } problem)
            throw new MachineDescriptionException($"{property}.{problem.Field}", problem.Problem);
    }

    /// <summary>
    /// Whether <paramref name="id"/> is a Firecracker resource id (a drive or interface id). Firecracker's checked_id:
    /// "API Resource IDs can only contain alphanumeric characters and underscores."
    /// </summary>
    public static bool IsResourceId(string? id) => !string.IsNullOrEmpty(id) && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static void ResourceId(string property, string? id)
    {
        if (!IsResourceId(id))
            throw new MachineDescriptionException(property, $"'{id}' is not a Firecracker resource id (letters, digits and underscores only)");
    }
}
