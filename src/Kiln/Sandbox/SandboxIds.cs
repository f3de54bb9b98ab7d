using System.Text;

namespace Kiln.Sandbox;

/// <summary>
/// Sandbox ids become directory names under the root and part of the API socket path, so they must be one safe path
/// segment — <c>[A-Za-z0-9][A-Za-z0-9._-]{0,63}</c> — and keep <c>root/id/firecracker.sock</c> within the 107 bytes
/// a Unix socket path can hold.
/// </summary>
public static class SandboxIds
{
    /// <summary>The longest id.</summary>
    public const int MaxLength = 64;

    /// <summary>The longest Unix socket path (sun_path is 108 bytes including the terminating NUL).</summary>
    public const int MaxSocketPathBytes = 107;

    /// <summary>Whether <paramref name="id"/> is acceptable under <paramref name="root"/>; if not, why.</summary>
    public static bool IsValid(string id, string root, out string? reason)
    {
        reason = Check(id, root);
        return reason is null;
    }

    /// <summary>Throws <see cref="InvalidSandboxIdException"/> unless the id is acceptable under the root.</summary>
    public static void Validate(string id, string root)
    {
        if (Check(id, root) is { } reason)
            throw new InvalidSandboxIdException(id ?? "", reason) { SandboxId = id };
    }

    private static string? Check(string? id, string? root)
    {
        if (string.IsNullOrEmpty(id))
            return "it is empty";
        if (id.Length > MaxLength)
            return $"it is longer than {MaxLength} characters";
        if (!char.IsAsciiLetterOrDigit(id[0]))
            return "it must start with a letter or a digit";
        foreach (var c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-'))
                return $"it contains '{(char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString())}'; only letters, digits, '.', '_' and '-' are allowed";
        }
        if (string.IsNullOrEmpty(root))
            return "the root directory is empty";
        var socket = SandboxPaths.For(root, id).SocketPath;
        var bytes = Encoding.UTF8.GetByteCount(socket);
        if (bytes > MaxSocketPathBytes)
            return $"the API socket path {socket} would be {bytes} bytes, over the {MaxSocketPathBytes} a Unix socket path can hold; use a shorter id or root";
        return null;
    }
}

/// <summary>The files of one sandbox directory.</summary>
/// <param name="Directory">The sandbox directory: <c>root/id</c>.</param>
public sealed record SandboxPaths(string Directory)
{
    /// <summary>The paths for <paramref name="id"/> under <paramref name="root"/>.</summary>
    public static SandboxPaths For(string root, string id) => new(Path.Combine(Path.GetFullPath(root), id));

    /// <summary>Firecracker's API socket.</summary>
    public string SocketPath => Path.Combine(Directory, "firecracker.sock");

    /// <summary>The guest's serial console (Firecracker's stdout and stderr).</summary>
    public string ConsolePath => Path.Combine(Directory, "console.log");

    /// <summary>The guest's serial input of a detached VMM: a FIFO that is its stdin (<c>kiln attach</c> writes to it).</summary>
    public string ConsoleInputPath => Path.Combine(Directory, "console.in");

    /// <summary>Firecracker's own log (<c>--log-path</c>), kept out of the console. Fresh for every start.</summary>
    public string VmmLogPath => Path.Combine(Directory, "firecracker.log");

    /// <summary>Firecracker's metrics FIFO (<c>--metrics-path</c>), when <see cref="HypervisorConfig.Metrics"/> is on.</summary>
    public string MetricsPath => Path.Combine(Directory, "metrics.fifo");

    /// <summary>The previous start's <see cref="VmmLogPath"/>, kept for one more start.</summary>
    public string PreviousVmmLogPath => VmmLogPath + ".1";

    /// <summary>The persisted state.</summary>
    public string StatePath => Path.Combine(Directory, "state.json");

    /// <summary>The snapshot's VM state file.</summary>
    public string SnapshotStatePath => Path.Combine(Directory, "snapshot.state");

    /// <summary>The snapshot's guest memory file.</summary>
    public string SnapshotMemoryPath => Path.Combine(Directory, "snapshot.mem");

    /// <summary>The placeholder backing file of pool slot <paramref name="slot"/> (each slot its own file).</summary>
    public string PlaceholderPath(int slot) => Path.Combine(Directory, $"pool-{slot}.img");
}
