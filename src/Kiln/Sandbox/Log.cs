using Microsoft.Extensions.Logging;
using Kiln.Vmm;

namespace Kiln.Sandbox;

/// <summary>The driver's log events (source-generated).</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Sandbox {SandboxId}: firecracker started (pid {Pid}, {Ownership})")]
    public static partial void VmmSpawned(ILogger logger, string sandboxId, int pid, VmmOwnership ownership);

    [LoggerMessage(3, LogLevel.Information, "Sandbox {SandboxId}: running after {ElapsedMs:F1} ms")]
    public static partial void Started(ILogger logger, string sandboxId, double elapsedMs);

    [LoggerMessage(4, LogLevel.Error, "Sandbox {SandboxId}: start failed at step {Step}")]
    public static partial void StartFailed(ILogger logger, Exception exception, string sandboxId, string step);

    [LoggerMessage(5, LogLevel.Information, "Sandbox {SandboxId}: firecracker stopped (ended by {EndedBy}, {Final})")]
    public static partial void Stopped(ILogger logger, string sandboxId, string endedBy, Kiln.Vmm.VmmProcessState final);

    [LoggerMessage(6, LogLevel.Information, "Sandbox {SandboxId}: device queued until start ({Device})")]
    public static partial void DeviceQueued(ILogger logger, string sandboxId, HypervisorDevice device);

    [LoggerMessage(7, LogLevel.Information, "Sandbox {SandboxId}: {HostPath} hot-plugged into {DriveId} ({GuestDevice})")]
    public static partial void HotplugAdded(ILogger logger, string sandboxId, string hostPath, string driveId, string guestDevice);

    [LoggerMessage(8, LogLevel.Information, "Sandbox {SandboxId}: {DriveId} back to its placeholder")]
    public static partial void HotplugRemoved(ILogger logger, string sandboxId, string driveId);

    [LoggerMessage(9, LogLevel.Information, "Sandbox {SandboxId}: re-attached to firecracker pid {Pid}")]
    public static partial void Reattached(ILogger logger, string sandboxId, int pid);

    [LoggerMessage(10, LogLevel.Warning, "Sandbox {SandboxId}: the recorded firecracker (pid {Pid}) is gone or is another process now")]
    public static partial void RecordedVmmGone(ILogger logger, string sandboxId, int pid);

    [LoggerMessage(11, LogLevel.Warning, "Sandbox {SandboxId}: firecracker ended on its own ({Final})")]
    public static partial void VmmEnded(ILogger logger, string sandboxId, Kiln.Vmm.VmmProcessState final);

    [LoggerMessage(12, LogLevel.Error, "Sandbox {SandboxId}: its VMM ended on its own but the record could not say so; readers still see Exited, and the next one to notice tries again")]
    public static partial void ExitRecordFailed(ILogger logger, Exception exception, string sandboxId);

    [LoggerMessage(13, LogLevel.Information, "Sandbox {SandboxId}: a hot-plug or hot-unplug of {DriveId} got no answer; Firecracker says it holds {Holds}")]
    public static partial void SlotSettled(ILogger logger, string sandboxId, string driveId, string holds);
}
