namespace Kiln.Vmm;

/// <summary>The firecracker process could not be launched at all (missing binary, not executable, …).</summary>
public sealed class VmmLaunchException(string executable, string message, Exception? innerException = null)
    : Exception($"Cannot launch {executable}: {message}", innerException)
{
    /// <summary>The executable that failed to launch.</summary>
    public string Executable { get; } = executable;
}
