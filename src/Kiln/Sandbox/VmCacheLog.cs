using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox;

/// <summary>The VM cache's log events and those of a sandbox taking from it (source-generated).</summary>
internal static partial class VmCacheLog
{
    [LoggerMessage(60, LogLevel.Debug, "VM cache of template {Template}: slot {Slot} ready (pid {Pid}, paused)")]
    public static partial void Filled(ILogger logger, string template, long slot, int pid);

    [LoggerMessage(61, LogLevel.Error, "VM cache of template {Template}: refilling slot {Slot} failed; refilling stops until the next take reports it")]
    public static partial void RefillFailed(ILogger logger, Exception exception, string template, long slot);

    [LoggerMessage(62, LogLevel.Warning, "VM cache of template {Template}: the cached VM of slot {Slot} ended on its own ({Final}); replacing it")]
    public static partial void CachedVmDied(ILogger logger, string template, long slot, Kiln.Vmm.VmmProcessState final);

    [LoggerMessage(67, LogLevel.Warning, "VM cache of template {Template}: the template was deleted; stopping the cached VMs")]
    public static partial void TemplateDeleted(ILogger logger, string template);

    [LoggerMessage(63, LogLevel.Information, "Sandbox {SandboxId}: took a cached VM of template {Template} (pid {Pid})")]
    public static partial void Hit(ILogger logger, string sandboxId, string template, int pid);

    [LoggerMessage(64, LogLevel.Information, "Sandbox {SandboxId}: no cached VM of template {Template} ready; restoring directly")]
    public static partial void Miss(ILogger logger, string sandboxId, string template);

    [LoggerMessage(65, LogLevel.Information, "Sandbox {SandboxId}: the VM cache does not serve it ({Reason}); restoring directly")]
    public static partial void Bypass(ILogger logger, string sandboxId, string reason);

    [LoggerMessage(66, LogLevel.Warning, "Sandbox {SandboxId}: the cached VM (pid {Pid}) ended during the hand-over; restoring directly")]
    public static partial void HandOverLost(ILogger logger, string sandboxId, int pid);
}
