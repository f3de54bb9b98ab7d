using Kiln.Api;

namespace Kiln.Vmm;

/// <summary>The firecracker binary is one Kiln cannot use, or cannot use for what was asked.</summary>
public abstract class FirecrackerVersionException(string executable, string message, Exception? innerException = null)
    : Exception(message, innerException)
{
    /// <summary>The binary.</summary>
    public string Executable { get; } = executable;
}

/// <summary><c>firecracker --version</c> failed or printed no version.</summary>
public sealed class FirecrackerVersionUnknownException(string executable, string reason, Exception? innerException = null)
    : FirecrackerVersionException(executable, $"Cannot tell which Firecracker {executable} is: {reason}", innerException);

/// <summary>The binary's release is outside what Kiln supports.</summary>
public sealed class UnsupportedFirecrackerVersionException(string executable, FirecrackerVersion version)
    : FirecrackerVersionException(executable,
        $"{executable} is Firecracker {version}; Kiln supports {SupportedFirecracker.Minimum} up to {SupportedFirecracker.MaximumTested.Major}.{SupportedFirecracker.MaximumTested.Minor}.x (tested with {SupportedFirecracker.MaximumTested}).")
{
    /// <summary>The binary's release.</summary>
    public FirecrackerVersion Version { get; } = version;
}

/// <summary>A feature asked for needs a newer Firecracker than the binary is.</summary>
public sealed class FirecrackerFeatureUnavailableException(string executable, FirecrackerVersion version, FirecrackerFeature feature)
    : FirecrackerVersionException(executable,
        $"{feature.Name} needs Firecracker {feature.Since} or newer; {executable} is Firecracker {version}.")
{
    /// <summary>The binary's release.</summary>
    public FirecrackerVersion Version { get; } = version;

    /// <summary>The feature.</summary>
    public FirecrackerFeature Feature { get; } = feature;
}
