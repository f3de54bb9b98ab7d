// Every process a test starts (Kiln's host, the stand-in, the CLI, the agent) is a .NET program, and each one's
// runtime opens a diagnostic IPC socket /tmp/dotnet-diagnostic-PID-*-socket that nothing removes when the process is
// SIGKILLed, as the fault tests do thousands of times. Setting the knob in the test process's environment before any
// test runs reaches every child, whose environment Kiln builds from this one; the runtimeconfig knob did not (it is
// read by the runtime of the process it configures, and the stand-in and hosts are separate apps).
using System.Runtime.CompilerServices;

namespace Kiln.Testing;

internal static class NoDiagnosticFiles
{
    /// <summary>The environment variable that turns the runtime's diagnostic IPC (and its socket) off.</summary>
    public const string Variable = "DOTNET_EnableDiagnostics";

#pragma warning disable CA2255 // A test assembly is the application here: its initializer runs before any test starts a child.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void TurnOffForChildren() => Environment.SetEnvironmentVariable(Variable, "0");
}
