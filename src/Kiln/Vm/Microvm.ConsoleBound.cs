// A detached VMM writes its console straight into the file, so its log is bounded from outside (copytruncate,
// CopyTruncateRotation) by whoever holds it: a Microvm for a detached VMM checks the file when it is made (so every
// kiln command that opens the sandbox bounds it) and then periodically while it lives. An owned VMM's output passes
// through RotatingFileWriter instead. A detached VM nobody holds grows until someone opens it again, unless it was
// started with a console keeper (MicrovmOptions.ConsoleKeeper), which writes the file through RotatingFileWriter too.
using Kiln.Vmm;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>How often a held detached VMM's console log is checked against its bound.</summary>
    private static readonly TimeSpan ConsoleCheckInterval = TimeSpan.FromSeconds(5);

    private ITimer? _consoleBound;

    private void StartConsoleBound()
    {
        // A console keeper writes the file through its own rotation; a copytruncate beside it would fight it.
        if (_options.Ownership != VmmOwnership.Detached || _consoleBound is not null || _vmm.ConsoleKeeper is not null)
            return;
        BoundConsole();
        _consoleBound = _options.TimeProvider.CreateTimer(_ => BoundConsole(), null, ConsoleCheckInterval, ConsoleCheckInterval);
    }

    /// <summary>
    /// Rotates the console log when it reached its bound. A failure (the directory removed, say) has no caller to go
    /// to: it is logged, and the next check tries again.
    /// </summary>
    private void BoundConsole()
    {
        try
        {
            if (CopyTruncateRotation.RotateIfFull(_options.ConsolePath, _options.ConsoleRotation))
                VmLog.ConsoleRotated(_logger, VmId, _options.ConsolePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            VmLog.ConsoleRotationFailed(_logger, e, VmId, _options.ConsolePath);
        }
    }

    private async ValueTask StopConsoleBoundAsync()
    {
        if (_consoleBound is { } timer)
            await timer.DisposeAsync().ConfigureAwait(false);
        _consoleBound = null;
    }
}
