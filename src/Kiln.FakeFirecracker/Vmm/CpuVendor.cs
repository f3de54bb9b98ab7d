// The CPU vendor string (CPUID leaf 0) a snapshot records and a load compares, read from /proc/cpuinfo.
namespace Kiln.FakeFirecracker.Vmm;

internal static class CpuVendor
{
    private static readonly Lazy<string> HostVendor = new(() =>
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal))
                ?.Split(':', 2)[1].Trim() ?? "";
        }
        catch (IOException)
        {
            return "";
        }
    });

    public static string Host => HostVendor.Value;

    /// <summary>As persist.rs logs it: the Debug form of the 12 bytes, e.g. <c>[65, 117, …]</c>.</summary>
    public static string Bytes(string vendor) => "[" + string.Join(", ", vendor.Select(c => (int)c)) + "]";
}
