// Compares what a process wrote with a transcript's `output` step, allowing exactly what transcripts/README.md lists as
// differing by nature between two runs of Firecracker: durations (`took 110 us`), the order in which lines of
// different threads interleave (each thread's own sequence must match), the vCPU threads' lines, a guest kernel's
// console lines, and the snapshot's CPU vendor. The host's CPU vendor is the replaying machine's, as a real
// firecracker on it would print.
using System.Text.RegularExpressions;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public static partial class OutputComparison
{
    private const string Console = "(guest console)";

    /// <summary>Null when <paramref name="actual"/> (the raw output, timestamps included) matches
    /// <paramref name="expected"/> (the recorded lines, timestamps removed); else the first difference per thread.</summary>
    public static string? Compare(IReadOnlyList<string> expected, string actual)
    {
        var want = ByThread(expected.Select(ExpectedHostVendor));
        var got = ByThread(actual.Split('\n').Where(l => l.Length > 0).Select(l => TimestampRegex().Replace(l, "")));
        var differences = new List<string>();
        foreach (var thread in want.Keys.Union(got.Keys).Order(StringComparer.Ordinal))
        {
            var w = want.GetValueOrDefault(thread) ?? [];
            var g = got.GetValueOrDefault(thread) ?? [];
            var n = 0;
            while (n < w.Count && n < g.Count && w[n] == g[n])
            {
                n++;
            }

            if (n < w.Count || n < g.Count)
            {
                differences.Add($"thread {thread}, line {n}: got {(n < g.Count ? $"'{g[n]}'" : "nothing")}, expected {(n < w.Count ? $"'{w[n]}'" : "nothing")}");
            }
        }

        return differences.Count == 0 ? null : string.Join("; ", differences);
    }

    /// <summary>Firecracker's lines grouped by the thread that wrote them, normalised; vCPU and console lines dropped.
    /// A line without the <c>[ID:THREAD]</c> tag is main's <c>Error: …</c> line, the rest of a panic message
    /// (the panicking thread's), or the guest's console.</summary>
    private static Dictionary<string, List<string>> ByThread(IEnumerable<string> lines)
    {
        var threads = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        string? panicking = null;
        foreach (var line in lines)
        {
            string thread;
            if (TagRegex().Match(line) is { Success: true } tag)
            {
                thread = tag.Groups[1].Value;
                panicking = line.Contains("] Firecracker panicked at ", StringComparison.Ordinal) ? thread : null;
            }
            else if (line.StartsWith("Error: ", StringComparison.Ordinal))
            {
                thread = "main";
            }
            else
            {
                thread = panicking ?? Console;
            }

            if (thread == Console || thread.StartsWith("fc_vcpu", StringComparison.Ordinal))
            {
                continue;
            }

            if (!threads.TryGetValue(thread, out var list))
            {
                threads[thread] = list = [];
            }

            list.Add(SnapshotVendorRegex().Replace(DurationRegex().Replace(line, "N$1"), "$1[vendor]"));
        }

        return threads;
    }

    private static string ExpectedHostVendor(string line) =>
        HostVendorRegex().Replace(line, m => m.Groups[1].Value + "[" + string.Join(", ", HostVendor.Value.Select(c => (int)c)) + "]");

    private static readonly Lazy<string> HostVendor = new(() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "");

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+ ")]
    private static partial Regex TimestampRegex();

    [GeneratedRegex(@"^\[[^:\]]+:([^:\]]+)(:[^\]]*)?\] ")]
    private static partial Regex TagRegex();

    [GeneratedRegex(@"\d+((?: CPU)? (?:us|ms)\b)")]
    private static partial Regex DurationRegex();

    [GeneratedRegex(@"(Snapshot CPU vendor ID: )\[[0-9, ]*\]")]
    private static partial Regex SnapshotVendorRegex();

    [GeneratedRegex(@"(Host CPU vendor ID: )\[[0-9, ]*\]")]
    private static partial Regex HostVendorRegex();
}
