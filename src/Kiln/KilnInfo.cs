namespace Kiln;

/// <summary>Facts about this build of Kiln.</summary>
public static class KilnInfo
{
    /// <summary>Kiln's informational version.</summary>
    public static string Version { get; } =
        typeof(KilnInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
