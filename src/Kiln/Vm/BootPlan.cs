// The API boot sequence derived from a machine description, as named steps (go-sdk's handler chain, Kata's
// startSandbox). The names are what trace spans (kiln.sandbox.start.<step>), logs and a MicrovmBootException report.
using Kiln.Api;

namespace Kiln.Vm;

/// <summary>The pre-boot API calls that configure and start one described microVM, in order.</summary>
public sealed class BootPlan
{
    private readonly List<(string Name, Func<FirecrackerClient, CancellationToken, Task> Apply)> _steps = [];

    private BootPlan() { }

    /// <summary>
    /// The plan for <paramref name="description"/>: <c>machine-config</c>, <c>boot-source</c>, the devices in order
    /// (grouped by their step labels), then <c>memory-hotplug</c>, <c>balloon</c>, <c>entropy</c> and
    /// <c>mmds-config</c> when described (MMDS names interfaces, so it follows them), and <c>instance-start</c>.
    /// </summary>
    public static BootPlan For(MachineDescription description)
    {
        ArgumentNullException.ThrowIfNull(description);
        var plan = new BootPlan();
        plan.Add("machine-config", (c, ct) => c.PutMachineConfigurationAsync(description.MachineConfig, ct));
        plan.Add("boot-source", (c, ct) => c.PutGuestBootSourceAsync(description.BootSource, ct));
        var devices = description.Devices;
        for (var i = 0; i < devices.Count;)
        {
            var name = devices[i].StepName;
            var end = i + 1;
            while (end < devices.Count && devices[end].Step is not null && devices[end].StepName == name)
                end++;
            var group = devices.Skip(i).Take(end - i).ToArray();
            if (group.Length > 1 && group.All(d => d is MachineDrive))
            {
                // A group of drives (the placeholder pool) goes pipelined: one round trip, the same requests in order.
                var drives = group.Select(d => ((MachineDrive)d).Drive).ToArray();
                plan.Add(name, (c, ct) => c.PutGuestDrivesAsync(drives, ct));
            }
            else
            {
                plan.Add(name, async (c, ct) =>
                {
                    foreach (var device in group)
                        await AttachAsync(c, device, ct).ConfigureAwait(false);
                });
            }
            i = end;
        }
        if (description.MemoryHotplug is { } hotplug)
            plan.Add("memory-hotplug", (c, ct) => c.PutMemoryHotplugAsync(hotplug, ct));
        if (description.Balloon is { } balloon)
            plan.Add("balloon", (c, ct) => c.PutBalloonAsync(balloon, ct));
        if (description.Entropy is { } entropy)
            plan.Add("entropy", (c, ct) => c.PutEntropyDeviceAsync(entropy, ct));
        if (description.Mmds is { } mmds)
            plan.Add("mmds-config", (c, ct) => c.PutMmdsConfigAsync(mmds, ct));
        if (description.MmdsDocument is { } document)
            plan.Add("mmds-data", (c, ct) => c.PutMmdsAsync(document, ct));
        plan.Add("instance-start", (c, ct) => c.StartInstanceAsync(ct));
        return plan;
    }

    /// <summary>The step names, in order.</summary>
    public IReadOnlyList<string> StepNames => [.. _steps.Select(s => s.Name)];

    /// <summary>The steps, each talking to <paramref name="client"/>.</summary>
    public IReadOnlyList<BootStep> Bind(FirecrackerClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        return Bind(() => client);
    }

    /// <summary>The steps, each talking to the client <paramref name="client"/> returns when the step runs.</summary>
    public IReadOnlyList<BootStep> Bind(Func<FirecrackerClient> client)
    {
        ArgumentNullException.ThrowIfNull(client);
        return [.. _steps.Select(s => new BootStep(s.Name, ct => s.Apply(client(), ct)))];
    }

    private void Add(string name, Func<FirecrackerClient, CancellationToken, Task> apply) => _steps.Add((name, apply));

    private static Task AttachAsync(FirecrackerClient client, MachineDevice device, CancellationToken cancellationToken) => device switch
    {
        MachineDrive d => client.PutGuestDriveByIDAsync(d.Drive, cancellationToken),
        MachineNetworkInterface n => client.PutGuestNetworkInterfaceByIDAsync(n.Interface, cancellationToken),
        MachineVsock v => client.PutGuestVsockAsync(v.Vsock, cancellationToken),
        _ => throw new ArgumentException($"Unknown device {device.GetType().Name}.", nameof(device)),
    };
}
