using Kiln.Api;

namespace Kiln.Vm;

/// <summary>The base of every error the <c>Vm</c> layer raises.</summary>
public class MicrovmException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>A machine description with a bad value; raised before any process starts.</summary>
public sealed class MachineDescriptionException(string propertyName, string message)
    : MicrovmException($"{propertyName}: {message}")
{
    /// <summary>The bad property, as a path from the description (e.g. <c>Devices[2].Drive.DriveId</c>).</summary>
    public string PropertyName { get; } = propertyName;
}

/// <summary>An operation called in a lifecycle state that does not allow it.</summary>
public sealed class MicrovmStateException(string operation, MicrovmState actual, params MicrovmState[] expected)
    : MicrovmException($"Cannot {operation}: the microVM is {actual}, expected {string.Join(" or ", expected)}.")
{
    /// <summary>The state the microVM was in.</summary>
    public MicrovmState Actual { get; } = actual;

    /// <summary>The states the operation needs.</summary>
    public IReadOnlyList<MicrovmState> Expected { get; } = expected;
}

/// <summary>
/// Boot failed: the VMM was killed and what the boot created was removed. Carries the failing step, Firecracker's
/// fault message when it gave one, and the tail of the VMM's log and output.
/// </summary>
public sealed class MicrovmBootException(string step, string message, string? faultMessage, string outputTail, Exception innerException)
    : MicrovmException(message, innerException)
{
    /// <summary>The boot step that failed (e.g. <c>boot-source</c>).</summary>
    public string Step { get; } = step;

    /// <summary>Firecracker's fault_message, when the failure was an API answer.</summary>
    public string? FaultMessage { get; } = faultMessage;

    /// <summary>The VMM's log, then its stdout/stderr, last lines.</summary>
    public string OutputTail { get; } = outputTail;

    internal static string? FindFault(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is FirecrackerApiException api)
                return api.FaultMessage;
        }
        return null;
    }
}

/// <summary>Every action of a shutdown plan ran out of time and the VMM still runs.</summary>
public sealed class MicrovmShutdownException(string message) : MicrovmException(message);

/// <summary>
/// A detached VM's console keeper died and could not be started again: its console log is not written (the VMM drops
/// its serial output, counted in uart.error_count) until a restart succeeds. The VMM itself still runs.
/// </summary>
public sealed class ConsoleKeeperRestartException(string message, Exception? innerException = null)
    : MicrovmException(message, innerException);
