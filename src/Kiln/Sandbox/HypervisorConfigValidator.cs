using Kiln.Vm;
using Kiln.Vmm;

namespace Kiln.Sandbox;

/// <summary>Checks a configuration before anything starts; every error names the bad property.</summary>
public static class HypervisorConfigValidator
{
    /// <summary>The largest pool: each slot is a virtio-mmio device and so an IRQ of the guest's limited supply.</summary>
    public const int MaxBlockPoolSize = 16;

    /// <summary>Throws <see cref="SandboxConfigurationException"/> for the first bad property.</summary>
    public static void Validate(HypervisorConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (string.IsNullOrWhiteSpace(config.FirecrackerPath))
            throw Bad(nameof(config.FirecrackerPath), "is empty");
        if (VmmProcess.ResolveExecutable(config.FirecrackerPath) is null)
            throw Bad(nameof(config.FirecrackerPath), $"'{config.FirecrackerPath}' was not found");
        if (config.Restore is { } restore)
        {
            // A restore loads a machine that exists already: there is no kernel to boot and no pool to attach.
            SandboxRestoreValidator.Validate(restore, config);
        }
        else
        {
            RequireFile(nameof(config.KernelPath), config.KernelPath);
            if (config.InitrdPath is null && config.ImagePath is null)
                throw Bad(nameof(config.ImagePath), "set an image, an initrd, or both");
            if (config.InitrdPath is not null)
                RequireFile(nameof(config.InitrdPath), config.InitrdPath);
            if (config.ImagePath is not null)
                RequireFile(nameof(config.ImagePath), config.ImagePath);
        }
        if (config.VcpuCount is < 1 or > 32)
            throw Bad(nameof(config.VcpuCount), $"is {config.VcpuCount}; Firecracker takes 1 to 32");
        if (config.MemoryMiB < 1)
            throw Bad(nameof(config.MemoryMiB), $"is {config.MemoryMiB}; it must be positive");
        if (config.Balloon is { } balloon)
        {
            if (balloon.InitialMiB < 0 || balloon.InitialMiB > config.MemoryMiB)
                throw Bad($"{nameof(config.Balloon)}.{nameof(BalloonSettings.InitialMiB)}", $"is {balloon.InitialMiB}; it must be 0 to the {config.MemoryMiB} MiB of MemoryMiB");
            // Firecracker's stats_polling_interval_s is a u16.
            if (balloon.StatisticsIntervalSeconds is < 0 or > ushort.MaxValue)
                throw Bad($"{nameof(config.Balloon)}.{nameof(BalloonSettings.StatisticsIntervalSeconds)}", $"is {balloon.StatisticsIntervalSeconds}; it must be 0 to {ushort.MaxValue}");
        }
        if (config.BlockPoolSize is < 0 or > MaxBlockPoolSize)
            throw Bad(nameof(config.BlockPoolSize), $"is {config.BlockPoolSize}; it must be 0 to {MaxBlockPoolSize}");
        if (string.IsNullOrWhiteSpace(config.RootDirectory))
            throw Bad(nameof(config.RootDirectory), "is empty");
        RequirePositive(nameof(config.ApiReadyTimeout), config.ApiReadyTimeout);
        RequirePositive(nameof(config.BootTimeout), config.BootTimeout);
        RequirePositive(nameof(config.RequestTimeout), config.RequestTimeout);
        if (config.ConsoleLimitBytes is < 4096)
            throw Bad(nameof(config.ConsoleLimitBytes), $"is {config.ConsoleLimitBytes}; a console file must be allowed at least 4096 bytes");
        if (config.StopTimeout < TimeSpan.Zero)
            throw Bad(nameof(config.StopTimeout), "is negative");
        if (config.Network is { } network)
        {
            try
            {
                network.Validate();
            }
            catch (Kiln.Host.Network.NetworkConfigurationException e)
            {
                throw Bad($"{nameof(config.Network)}.{e.PropertyName}", e.Message[(e.PropertyName.Length + 2)..]);
            }
        }
        if (config.Jail?.NetworkNamespacePath is not null && config.Network is { Mode: not Kiln.Host.Network.NetworkMode.None })
        {
            // The sandbox network decides the namespace; the jailer joins it (--netns) by itself.
            throw Bad($"{nameof(config.Jail)}.{nameof(Kiln.Vmm.JailSettings.NetworkNamespacePath)}",
                "is chosen by the sandbox's Network: leave it null");
        }
        if (config.Metadata is { } metadata)
        {
            if (config.Network is null || config.Network.Mode == Kiln.Host.Network.NetworkMode.None)
                throw Bad(nameof(config.Metadata), "MMDS answers on a network interface: give the sandbox a Network");
            if (!Enum.IsDefined(metadata.Version))
                throw Bad($"{nameof(config.Metadata)}.{nameof(MetadataSettings.Version)}", $"{(int)metadata.Version} is not an MMDS version");
            if (metadata.Ipv4Address is { } ip && !(System.Net.IPAddress.TryParse(ip, out var address)
                && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && address.GetAddressBytes() is [169, 254, ..]))
                throw Bad($"{nameof(config.Metadata)}.{nameof(MetadataSettings.Ipv4Address)}", $"'{ip}' is not a link-local IPv4 address (169.254.0.0/16), which Firecracker requires");
        }
        if (config.KernelParams is null)
            throw Bad(nameof(config.KernelParams), "is null");
        foreach (var param in config.KernelParams)
        {
            try
            {
                KernelCommandLine.Validate(param.Key, param.Value);
            }
            catch (ArgumentException e)
            {
                throw Bad(nameof(config.KernelParams), e.Message.Split(" (Parameter", 2)[0]);
            }
        }
    }

    private static void RequireFile(string property, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw Bad(property, "is empty");
        if (!File.Exists(path))
            throw Bad(property, $"'{path}' does not exist");
    }

    private static void RequirePositive(string property, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
            throw Bad(property, "must be positive");
    }

    private static SandboxConfigurationException Bad(string property, string message) => new(property, message);
}
