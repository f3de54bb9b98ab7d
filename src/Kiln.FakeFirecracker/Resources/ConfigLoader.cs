// Applies a whole VmmConfig document (--config-file, or the configuration saved in a snapshot) through the same
// checks the API calls make, in the order Firecracker's VmResources::from_json applies them.
using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

internal static class ConfigLoader
{
    public static void Apply(VmmCore vmm, JsonObject config, bool checkFiles)
    {
        if (config["logger"] is JsonObject logger)
        {
            LoggerAndMetrics.ApplyLogger(vmm, logger);
        }

        if (config["metrics"] is JsonObject metrics)
        {
            LoggerAndMetrics.ApplyMetrics(vmm, metrics);
        }

        if (config["machine-config"] is JsonObject machine)
        {
            MachineConfiguration.Apply(vmm, machine, replace: true);
        }

        if (config["cpu-config"] is JsonObject cpu)
        {
            CpuConfiguration.Apply(vmm, cpu);
        }

        BootSource.Apply(vmm, config["boot-source"]!.AsObject(), checkFiles);
        foreach (var drive in Items(config, "drives"))
        {
            Drives.Apply(vmm, drive);
        }

        foreach (var pmem in Items(config, "pmem"))
        {
            Pmem.Apply(vmm, pmem);
        }

        foreach (var net in Items(config, "network-interfaces"))
        {
            NetworkInterfaces.Apply(vmm, net);
        }

        if (config["vsock"] is JsonObject vsock)
        {
            Vsock.Apply(vmm, vsock);
        }

        if (config["balloon"] is JsonObject balloon)
        {
            Balloon.Apply(vmm, balloon);
        }

        if (config["mmds-config"] is JsonObject mmds)
        {
            Mmds.ApplyConfig(vmm, mmds);
        }

        if (config["entropy"] is JsonObject entropy)
        {
            Entropy.Apply(vmm, entropy);
        }

        if (config["memory-hotplug"] is JsonObject hotplug)
        {
            MemoryHotplug.Apply(vmm, hotplug);
        }

        if (config["serial"] is JsonObject serial)
        {
            Entropy.ApplySerial(vmm, serial);
        }
    }

    private static IEnumerable<JsonObject> Items(JsonObject config, string key) =>
        config[key] is JsonArray a ? a.Select(n => n!.AsObject()) : [];
}
