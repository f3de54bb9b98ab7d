using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>
/// The API tier: every recording of real Firecracker (assets/transcripts) and every scenario written from its source
/// (assets/scenarios) replayed against the stand-in, and against real Firecracker when KILN_FIRECRACKER names one.
/// </summary>
public sealed class TranscriptTests
{
    private static readonly string Assets = Path.Combine(AppContext.BaseDirectory, "assets");

    public static TheoryData<string, string> Scenarios()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in FirecrackerTarget.Names)
        {
            foreach (var folder in new[] { "transcripts", "scenarios" })
            {
                foreach (var file in Directory.EnumerateFiles(Path.Combine(Assets, folder), "*.json").Order(StringComparer.Ordinal))
                {
                    data.Add($"{folder}/{Path.GetFileName(file)}", target);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Scenarios))]
    public async Task Replaying_a_scenario_gives_the_answers_real_Firecracker_gives(string scenario, string target)
    {
        var file = Path.Combine(Assets, scenario);
        var needs = ScenarioNeeds.Of(JsonNode.Parse(await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken))!.AsObject());
        var guest = needs.GuestFor(target, out var skipReason);
        if (skipReason is not null)
        {
            Assert.Skip($"{scenario} against real Firecracker: {skipReason}");
        }

        var binary = FirecrackerTarget.Require(target);

        using var dir = new TempDir();
        await using var replayer = new TranscriptReplayer(dir, binary, guest);

        await replayer.ReplayAsync(file, TestContext.Current.CancellationToken);

        Assert.True(replayer.Differences.Count == 0,
            string.Join("\n", replayer.Differences) + "\n--- output ---\n" + replayer.Output[Math.Max(0, replayer.Output.Length - 4000)..]);
    }

    [Fact]
    public async Task The_configured_real_firecracker_is_the_version_the_recordings_were_made_with()
    {
        var binary = FirecrackerTarget.Require(FirecrackerTarget.RealName);
        await using var process = FakeProcess.Start(["--version"], binary: binary.BinaryPath);

        var code = await process.WaitExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal(0, code);
        Assert.StartsWith("Firecracker v1.16.1", process.Output);
    }

    [Fact]
    public void Every_scenario_cites_the_Firecracker_source_its_answers_come_from()
    {
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Assets, "scenarios"), "*.json"))
        {
            var scenario = JsonNode.Parse(File.ReadAllText(file))!;
            Assert.True(scenario["source"] is JsonArray { Count: > 0 }, $"{file} has no 'source' list");
            Assert.True(scenario["about"] is not null, $"{file} has no 'about'");
        }
    }
}
