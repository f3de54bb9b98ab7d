using Kiln.Api;

namespace Kiln.Cli.Infrastructure;

/// <summary>The firecracker versions Kiln supports, as the API layer defines them.</summary>
internal static class FirecrackerSupport
{
    public static FirecrackerVersion Parse(string versionOutput) => FirecrackerVersion.ParseVersionOutput(versionOutput);

    public static bool IsSupported(FirecrackerVersion version) => true;

    public static string RangeText => "?";
}
