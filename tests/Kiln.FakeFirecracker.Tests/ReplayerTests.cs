using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>The replayer must be able to fail: a doctored recording has to produce differences.</summary>
public sealed class ReplayerTests
{
    [Fact]
    public async Task A_recording_with_a_different_answer_is_reported_as_a_difference()
    {
        using var dir = new TempDir();
        var transcript = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(TranscriptReplayer.TranscriptDirectory, "05-stale-sockets.json"), TestContext.Current.CancellationToken))!;
        var results = transcript["results"]!.AsArray();
        results[0]!["status"] = 400;
        results[4]!["exists"] = false;
        results[^3]!["exit_code"] = 0;
        var doctored = dir["doctored.json"];
        await File.WriteAllTextAsync(doctored, transcript.ToJsonString(), TestContext.Current.CancellationToken);
        await using var replayer = new TranscriptReplayer(dir);

        await replayer.ReplayAsync(doctored, TestContext.Current.CancellationToken);

        Assert.Equal(3, replayer.Differences.Count);
        Assert.StartsWith("step 0:", replayer.Differences[0]);
        Assert.StartsWith("step 4:", replayer.Differences[1]);
    }

    [Fact]
    public async Task A_step_marked_as_a_known_stand_in_difference_is_reported_once_the_stand_in_gets_it_right()
    {
        using var dir = new TempDir();
        var transcript = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(TranscriptReplayer.TranscriptDirectory, "05-stale-sockets.json"), TestContext.Current.CancellationToken))!;
        var results = transcript["results"]!.AsArray();
        results[0]!["stand_in_differs"] = "pretend the stand-in answered differently";
        results[1]!["exists"] = false;
        results[1]!["stand_in_differs"] = "a real difference, tolerated on the stand-in";
        var marked = dir["marked.json"];
        await File.WriteAllTextAsync(marked, transcript.ToJsonString(), TestContext.Current.CancellationToken);
        await using var replayer = new TranscriptReplayer(dir);

        await replayer.ReplayAsync(marked, TestContext.Current.CancellationToken);

        var difference = Assert.Single(replayer.Differences);
        Assert.StartsWith("step 0: marked stand_in_differs", difference);
    }

    private const string Recorded = """
        2026-11-27T15:22:13.969343425 [vm:main] Running Firecracker v1.16.1
        2026-11-27T15:22:13.970603034 [vm:fc_api] API server started.
        2026-11-27T15:22:13.970681701 [vm:fc_api] 'load snapshot' API request took 110 us.
        2026-11-27T15:22:13.970681701 [vm:main] Snapshot CPU vendor ID: [71, 101]
        Error: RunWithApi(BuildMicroVmError(Restore))
        """;

    [Fact]
    public void Output_may_interleave_threads_and_differ_in_durations_and_the_snapshot_vendor_but_nothing_else()
    {
        string[] expected =
        [
            "[vm:fc_api] API server started.",
            "[vm:main] Running Firecracker v1.16.1",
            "[vm:fc_api] 'load snapshot' API request took 25444 us.",
            "[vm:main] Snapshot CPU vendor ID: [65, 117]",
            "Error: RunWithApi(BuildMicroVmError(Restore))",
        ];

        Assert.Null(OutputComparison.Compare(expected, Recorded));
    }

    [Theory]
    [InlineData(1, "[vm:fc_api] API server started!", "thread fc_api, line 0")]
    [InlineData(4, "Error: RunWithApi(Other)", "thread main, line 2")]
    [InlineData(-1, "[vm:fc_api] An extra line.", "thread fc_api, line 2")]
    public void Output_with_a_changed_or_extra_line_is_a_difference(int replace, string line, string where)
    {
        List<string> expected =
        [
            "[vm:main] Running Firecracker v1.16.1",
            "[vm:fc_api] API server started.",
            "[vm:fc_api] 'load snapshot' API request took 110 us.",
            "[vm:main] Snapshot CPU vendor ID: [71, 101]",
            "Error: RunWithApi(BuildMicroVmError(Restore))",
        ];
        if (replace < 0)
            expected.Add(line);
        else
            expected[replace] = line;

        Assert.StartsWith(where, OutputComparison.Compare(expected, Recorded));
    }
}
