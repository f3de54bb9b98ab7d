// The same machine description written as Firecracker's --config-file document (VmmConfig in
// src/vmm/src/resources.rs): with it, Firecracker configures and starts the VM itself before serving its API, so a
// boot is one process start instead of one request per resource.
using System.Text.Json;
using Kiln.Api;

namespace Kiln.Vm;

/// <summary>Writes a <see cref="MachineDescription"/> as a <c>--config-file</c> document.</summary>
public static class ConfigFile
{
    /// <summary>
    /// The document: VmmConfig's keys (<c>boot-source</c>, <c>machine-config</c>, <c>drives</c> — always present, as
    /// older Firecrackers require it — <c>network-interfaces</c>, <c>vsock</c>, <c>balloon</c>, <c>entropy</c>,
    /// <c>mmds-config</c>, <c>memory-hotplug</c>), the same records the API takes.
    /// </summary>
    public static FullVmConfiguration ToVmmConfig(MachineDescription description)
    {
        ArgumentNullException.ThrowIfNull(description);
        var interfaces = description.NetworkInterfaces.ToArray();
        return new FullVmConfiguration
        {
            BootSource = description.BootSource,
            MachineConfig = description.MachineConfig,
            Drives = [.. description.Drives],
            NetworkInterfaces = interfaces.Length == 0 ? null : interfaces,
            Vsock = description.Vsock,
            Balloon = description.Balloon,
            Entropy = description.Entropy,
            MmdsConfig = description.Mmds,
            MemoryHotplug = description.MemoryHotplug,
        };
    }

    /// <summary>The document as UTF-8 JSON.</summary>
    public static byte[] Serialize(MachineDescription description) =>
        JsonSerializer.SerializeToUtf8Bytes(ToVmmConfig(description), FirecrackerJsonContext.Default.FullVmConfiguration);

    /// <summary>Writes the document to <paramref name="path"/> (replacing it), readable by its owner only.</summary>
    public static async Task WriteAsync(MachineDescription description, string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("Firecracker runs on Linux only.");
        var bytes = Serialize(description);
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        await using var file = new FileStream(path, options);
        await file.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }
}
