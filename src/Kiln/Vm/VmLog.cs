using Kiln.Vmm;
using Microsoft.Extensions.Logging;

namespace Kiln.Vm;

/// <summary>The Vm layer's log events (source-generated).</summary>
internal static partial class VmLog
{
    [LoggerMessage(101, LogLevel.Debug, "microVM {VmId}: boot step {Step} done in {ElapsedMs:F2} ms")]
    public static partial void StepDone(ILogger logger, string vmId, string step, double elapsedMs);

    [LoggerMessage(102, LogLevel.Information, "microVM {VmId}: firecracker started (pid {Pid}, {Ownership})")]
    public static partial void Spawned(ILogger logger, string vmId, int pid, VmmOwnership ownership);

    [LoggerMessage(103, LogLevel.Information, "microVM {VmId}: shutdown action {Action} sent")]
    public static partial void ShutdownAction(ILogger logger, string vmId, ShutdownActionKind action);

    [LoggerMessage(104, LogLevel.Warning, "microVM {VmId}: shutdown action {Action} failed; trying the next")]
    public static partial void ShutdownActionFailed(ILogger logger, Exception exception, string vmId, ShutdownActionKind action);

    [LoggerMessage(105, LogLevel.Warning, "microVM {VmId}: the Firecracker {Reader} reader failed and stopped")]
    public static partial void ReaderFailed(ILogger logger, Exception exception, string vmId, string reader);

    [LoggerMessage(106, LogLevel.Debug, "microVM {VmId}: console log {Path} reached its bound and was rotated")]
    public static partial void ConsoleRotated(ILogger logger, string vmId, string path);

    [LoggerMessage(107, LogLevel.Warning, "microVM {VmId}: console log {Path} could not be rotated")]
    public static partial void ConsoleRotationFailed(ILogger logger, Exception exception, string vmId, string path);

    [LoggerMessage(108, LogLevel.Information, "microVM {VmId}: its console keeper (pid {OldPid}) had died; a new one runs (pid {NewPid})")]
    public static partial void ConsoleKeeperRestarted(ILogger logger, string vmId, int oldPid, int newPid);

    [LoggerMessage(109, LogLevel.Information, "microVM {VmId}: an interrupted pause or resume left its state in doubt; Firecracker says {After} (was taken as {Before})")]
    public static partial void StateSettled(ILogger logger, string vmId, MicrovmState before, MicrovmState after);
}
