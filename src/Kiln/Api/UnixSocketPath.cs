// Linux refuses a Unix socket path longer than sun_path can hold; .NET only finds out at bind/connect time with an
// unhelpful message, so Kiln checks every socket path up front with this one rule.
using System.Runtime.CompilerServices;
using System.Text;

namespace Kiln.Api;

/// <summary>The length rule for Unix domain socket paths on Linux.</summary>
public static class UnixSocketPath
{
    /// <summary>
    /// Longest path in bytes (UTF-8) that Linux accepts: <c>sun_path</c> holds 108 bytes including the terminating NUL.
    /// </summary>
    public const int MaxLength = 107;

    /// <summary>Whether <paramref name="path"/> is non-empty, has no NUL and fits <c>sun_path</c>.</summary>
    public static bool IsValid(string? path) =>
        !string.IsNullOrEmpty(path) && !path.Contains('\0', StringComparison.Ordinal) && Encoding.UTF8.GetByteCount(path) <= MaxLength;

    /// <summary>Throws when <paramref name="path"/> cannot be a Unix socket path, naming the path and its length.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="ArgumentException">The path is empty, contains NUL or is longer than <see cref="MaxLength"/> bytes.</exception>
    public static void Validate(string? path, [CallerArgumentExpression(nameof(path))] string? paramName = null)
    {
        ArgumentNullException.ThrowIfNull(path, paramName);
        if (path.Length == 0)
            throw new ArgumentException("A Unix socket path cannot be empty.", paramName);
        if (path.Contains('\0', StringComparison.Ordinal))
            throw new ArgumentException($"The Unix socket path '{path.Replace("\0", "\\0", StringComparison.Ordinal)}' contains a NUL character.", paramName);
        var bytes = Encoding.UTF8.GetByteCount(path);
        if (bytes > MaxLength)
        {
            throw new ArgumentException(
                $"The Unix socket path '{path}' is {bytes} bytes long; Linux allows at most {MaxLength} " +
                "(sun_path holds 108 bytes including the terminating NUL). Use a shorter directory, e.g. under /tmp.",
                paramName);
        }
    }
}
