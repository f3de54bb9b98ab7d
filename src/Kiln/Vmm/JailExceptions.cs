namespace Kiln.Vmm;

/// <summary>A jail setting is wrong; found before any process starts. <see cref="PropertyName"/> names it.</summary>
public sealed class JailConfigurationException(string propertyName, string message)
    : Exception($"Jail.{propertyName} {message}")
{
    /// <summary>The bad property of <see cref="JailSettings"/> (or "Id" / a file for the VMM's id and files).</summary>
    public string PropertyName { get; } = propertyName;
}

/// <summary>A jail tree with this id is in use by a live VMM: starting another one there would fail or harm it.</summary>
public sealed class JailInUseException(string chrootDirectory, int pid)
    : Exception($"The jail {chrootDirectory} is in use by the live VMM with PID {pid}")
{
    /// <summary>The jail's instance directory.</summary>
    public string ChrootDirectory { get; } = chrootDirectory;

    /// <summary>The VMM using it.</summary>
    public int Pid { get; } = pid;
}

/// <summary>The jailer failed, or the jailed VMM never showed up; everything Kiln made for it was removed.</summary>
public sealed class JailStartException(string message, string outputTail, Exception? innerException = null)
    : Exception(outputTail.Length == 0 ? message : $"{message}\n{outputTail}", innerException)
{
    /// <summary>The last lines the jailer (and the VMM) wrote.</summary>
    public string OutputTail { get; } = outputTail;
}
