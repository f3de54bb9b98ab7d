using System.Diagnostics.Metrics;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Kiln.Vmm.Telemetry;

namespace Kiln.Tests.Vmm.Telemetry;

// The parser against a stream of well-formed metrics lines with malformed ones mixed in: no exception escapes, every
// malformed line is skipped whole, and every value of every well-formed line reaches a MeterListener.
public sealed class MetricsParserPropertyTests
{
    private static readonly string[] Sections = ["vcpu", "block", "block_rootfs", "net_eth0", "latencies_us", "signals", "balloon"];
    private static readonly string[] Fields = ["exit_io_in", "read_count", "read_agg", "pause_vm", "sigbus", "sigpipe", "inflate_count"];

    private sealed record Line(string Text, bool Good);

    private static Gen<Line> GoodLines() =>
        Gen.OneOf(
            Gen.Elements(MetricsSamples.Lines[0], MetricsSamples.Lines[1], MetricsSamples.Rich),
            Gen.ListOf(
                    from section in Gen.Elements(Sections)
                    from field in Gen.Elements(Fields)
                    from value in Gen.Choose(0, int.MaxValue)
                    select (Section: section, Field: field, Value: value))
                .Select(Compose))
        .Select(text => new Line(text, Good: true));

    // A small line in Firecracker's shape; a field named *_agg becomes a latency aggregate.
    private static string Compose(IEnumerable<(string Section, string Field, int Value)> entries)
    {
        var sb = new StringBuilder("{\"utc_timestamp_ms\":1795720903982");
        foreach (var section in entries.GroupBy(e => e.Section))
        {
            sb.Append(",\"").Append(section.Key).Append("\":{");
            var fields = section.DistinctBy(e => e.Field).Select(e => e.Field.EndsWith("_agg", StringComparison.Ordinal)
                ? $"\"{e.Field}\":{{\"min_us\":{e.Value / 3},\"max_us\":{e.Value},\"sum_us\":{e.Value}}}"
                : $"\"{e.Field}\":{e.Value}");
            sb.AppendJoin(',', fields).Append('}');
        }
        return sb.Append('}').ToString();
    }

    private static Gen<Line> BadLines(Gen<Line> good) =>
        Gen.OneOf(
            // Cut short anywhere (as a full pipe or a crash would leave it).
            good.SelectMany(g => Gen.Choose(1, g.Text.Length - 1).Select(cut => g.Text[..cut])),
            // Something after the object.
            good.SelectMany(g => Gen.Elements("}", "x", ",", "{}", " 1").Select(tail => g.Text + tail)),
            // A count that is not one.
            good.Where(g => g.Text.Contains(":0", StringComparison.Ordinal))
                .SelectMany(g => Gen.Elements("\"0\"", "-1", "0.5", "null", "[0]", "true", "99999999999999999999")
                    .Select(v => ReplaceFirst(g.Text, ":0", ":" + v))),
            // Noise that cannot be a JSON object (it starts with a closing brace); no newlines, or it would be two lines.
            Gen.ArrayOf(Gen.Choose(1, 255).Select(b => (char)(b == '\n' ? ' ' : b))).Select(cs => "}" + new string(cs)))
        .Select(text => new Line(text, Good: false));

    private static string ReplaceFirst(string text, string what, string with)
    {
        var at = text.IndexOf(what, StringComparison.Ordinal);
        return text[..at] + with + text[(at + what.Length)..];
    }

    private static Arbitrary<Line[]> Streams()
    {
        var good = GoodLines();
        return Gen.ArrayOf(Gen.Frequency((3, good), (2, BadLines(good)))).ToArbitrary();
    }

    [Property(MaxTest = 100)]
    public Property Malformed_lines_mixed_with_good_ones_lose_nothing_from_the_good_ones() =>
        Prop.ForAll(Streams(), lines =>
        {
            using var meter = new Meter("Kiln.Tests.Property." + Guid.NewGuid().ToString("N"));
            using var recorder = new MeterRecorder(meter);
            var publisher = new FirecrackerMetricsPublisher("p", meter);
            var expectedSums = new Dictionary<string, long>();
            var expectedLast = new Dictionary<string, long>();

            foreach (var line in lines)
            {
                var result = publisher.Publish(Encoding.UTF8.GetBytes(line.Text));

                var expectedStatus = line.Good ? FirecrackerMetricsLineStatus.Parsed : FirecrackerMetricsLineStatus.Malformed;
                Assert.True(result.Status == expectedStatus, $"{result.Status} ({result.Error}) for: {line.Text}");
                if (!line.Good)
                    continue;
                foreach (var (path, value) in MetricsSamples.Leaves(line.Text))
                {
                    var key = FirecrackerMetricKey.FromPath(path);
                    var name = FirecrackerMetricsPublisherTests.ExpectedKey(key, "p");
                    if (key.Kind == FirecrackerMetricKind.Counter)
                        expectedSums[name] = expectedSums.GetValueOrDefault(name) + (long)value;
                    else
                        expectedLast[name] = (long)value;
                }
            }

            Assert.Equal(expectedSums, recorder.CounterSums.ToDictionary());
            Assert.Equal(expectedLast, recorder.GaugeValues.ToDictionary());
            Assert.Equal(lines.Count(l => l.Good), publisher.LinesPublished);
            Assert.Equal(lines.Count(l => !l.Good), publisher.LinesSkipped);
        });
}
