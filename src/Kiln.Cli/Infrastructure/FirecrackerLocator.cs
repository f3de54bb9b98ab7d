namespace Kiln.Cli.Infrastructure;

/// <summary>Finds the firecracker binary: <c>--firecracker</c>, else <c>KILN_FIRECRACKER</c>, else <c>firecracker</c> on PATH.</summary>
internal static class FirecrackerLocator
{
    public const string EnvironmentVariable = "KILN_FIRECRACKER";

    /// <summary>Where the path came from, for messages.</summary>
    public enum Source { Option, Environment, Path }

    public sealed record Located(string Path, Source Source);

    /// <summary>The binary to use, or null when none is configured or on PATH.</summary>
    /// <exception cref="UsageException">An explicitly given path does not exist or is not executable.</exception>
    public static Located? Find(string? option)
    {
        if (!string.IsNullOrWhiteSpace(option))
            return new Located(RequireFile(option, "--firecracker"), Source.Option);
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
            return new Located(RequireFile(fromEnvironment, EnvironmentVariable), Source.Environment);
        var onPath = SearchPath("firecracker");
        return onPath is null ? null : new Located(onPath, Source.Path);
    }

    /// <summary>Like <see cref="Find"/>, but a missing binary is bad usage.</summary>
    public static Located Require(string? option) =>
        Find(option) ?? throw new UsageException(
            $"firecracker not found: pass --firecracker PATH, set {EnvironmentVariable}, or put firecracker on PATH.");

    public static string? SearchPath(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var directory in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(directory, name);
            if (File.Exists(candidate) && IsExecutable(candidate))
                return candidate;
        }
        return null;
    }

    private static bool IsExecutable(string file) =>
        (File.GetUnixFileMode(file) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;

    private static string RequireFile(string path, string origin)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new UsageException($"firecracker binary not found: {full} (from {origin}).");
        // Caught here, before anything starts: launched, it would only die with exit code 126 before its socket.
        if (!IsExecutable(full))
            throw new UsageException($"firecracker binary is not executable: {full} (from {origin}); chmod +x it.");
        return full;
    }
}
