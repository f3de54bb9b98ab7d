// A Firecracker release number that sorts, parsed from `firecracker --version` or GET /version.
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Kiln.Api;

/// <summary>
/// A Firecracker release number (<c>major.minor.patch</c>), comparable. Parses <c>Firecracker v1.16.1</c> as
/// printed by <c>firecracker --version</c> (only the first non-empty line counts: log lines may follow) and
/// <c>1.16.1</c> as in <see cref="FirecrackerVersionInfo.FirecrackerVersion"/>; a <c>-dev</c> style suffix is ignored.
/// </summary>
/// <param name="Major">Major version.</param>
/// <param name="Minor">Minor version.</param>
/// <param name="Patch">Patch version.</param>
public readonly record struct FirecrackerVersion(int Major, int Minor, int Patch)
    : IComparable<FirecrackerVersion>, IComparable
{
    /// <summary>Parses a version; see the type's remarks for the accepted shapes.</summary>
    /// <exception cref="FormatException">The text holds no version.</exception>
    public static FirecrackerVersion Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (TryParse(text, out var version))
            return version;
        var excerpt = text.Length > 80 ? text[..80] + "…" : text;
        throw new FormatException($"'{excerpt}' is not a Firecracker version (expected e.g. 'Firecracker v1.16.1' or '1.16.1').");
    }

    /// <summary>Tries to parse a version; see the type's remarks for the accepted shapes.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out FirecrackerVersion version)
    {
        version = default;
        if (text is null)
            return false;
        var span = FirstNonEmptyLine(text.AsSpan()).Trim();
        if (span.StartsWith("Firecracker", StringComparison.OrdinalIgnoreCase))
            span = span["Firecracker".Length..].TrimStart();
        if (span.Length > 0 && (span[0] == 'v' || span[0] == 'V'))
            span = span[1..];
        var suffix = span.IndexOfAny('-', '+');
        if (suffix >= 0)
            span = span[..suffix];

        Span<Range> parts = stackalloc Range[4];
        if (span.Split(parts, '.') != 3)
            return false;
        if (!TryParsePart(span[parts[0]], out var major)
            || !TryParsePart(span[parts[1]], out var minor)
            || !TryParsePart(span[parts[2]], out var patch))
            return false;
        version = new FirecrackerVersion(major, minor, patch);
        return true;
    }

    private static ReadOnlySpan<char> FirstNonEmptyLine(ReadOnlySpan<char> text)
    {
        foreach (var line in text.EnumerateLines())
        {
            if (!line.IsWhiteSpace())
                return line;
        }
        return [];
    }

    private static bool TryParsePart(ReadOnlySpan<char> part, out int value) =>
        int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    /// <inheritdoc/>
    public int CompareTo(FirecrackerVersion other)
    {
        var c = Major.CompareTo(other.Major);
        if (c != 0)
            return c;
        c = Minor.CompareTo(other.Minor);
        return c != 0 ? c : Patch.CompareTo(other.Patch);
    }

    /// <inheritdoc/>
    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        FirecrackerVersion other => CompareTo(other),
        _ => throw new ArgumentException($"Cannot compare a {nameof(FirecrackerVersion)} with a {obj.GetType().Name}.", nameof(obj)),
    };

    /// <summary>Whether <paramref name="left"/> is older than <paramref name="right"/>.</summary>
    public static bool operator <(FirecrackerVersion left, FirecrackerVersion right) => left.CompareTo(right) < 0;

    /// <summary>Whether <paramref name="left"/> is newer than <paramref name="right"/>.</summary>
    public static bool operator >(FirecrackerVersion left, FirecrackerVersion right) => left.CompareTo(right) > 0;

    /// <summary>Whether <paramref name="left"/> is older than or the same as <paramref name="right"/>.</summary>
    public static bool operator <=(FirecrackerVersion left, FirecrackerVersion right) => left.CompareTo(right) <= 0;

    /// <summary>Whether <paramref name="left"/> is newer than or the same as <paramref name="right"/>.</summary>
    public static bool operator >=(FirecrackerVersion left, FirecrackerVersion right) => left.CompareTo(right) >= 0;

    /// <summary>The version as <c>major.minor.patch</c>, the shape <see cref="Parse"/> reads back.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Patch}");
}

/// <summary>The Firecracker releases Kiln works with, declared in one place.</summary>
public static class SupportedFirecracker
{
    /// <summary>The oldest release Kiln supports (the API Kiln uses is complete from here on).</summary>
    public static FirecrackerVersion Minimum { get; } = new(1, 10, 0);

    /// <summary>The newest release Kiln has been tested against (its spec is Kiln's wire contract).</summary>
    public static FirecrackerVersion MaximumTested { get; } = new(1, 16, 1);

    /// <summary>
    /// Whether <paramref name="version"/> is supported: at least <see cref="Minimum"/> and no newer than the
    /// minor release of <see cref="MaximumTested"/> (later patch releases of a tested minor only fix bugs).
    /// </summary>
    public static bool IsSupported(FirecrackerVersion version) =>
        version >= Minimum
        && (version.Major, version.Minor).CompareTo((MaximumTested.Major, MaximumTested.Minor)) <= 0;
}
