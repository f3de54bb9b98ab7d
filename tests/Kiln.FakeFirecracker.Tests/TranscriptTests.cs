using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class TranscriptTests
{
    public static TheoryData<string> Transcripts() =>
        new(Directory.EnumerateFiles(TranscriptReplayer.TranscriptDirectory, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(Transcripts))]
    public async Task Replaying_a_recording_of_real_Firecracker_gives_the_same_answers(string transcript)
    {
        using var dir = new TempDir();
        await using var replayer = new TranscriptReplayer(dir);

        await replayer.ReplayAsync(Path.Combine(TranscriptReplayer.TranscriptDirectory, transcript), TestContext.Current.CancellationToken);

        Assert.True(replayer.Differences.Count == 0,
            string.Join("\n", replayer.Differences) + "\n--- output ---\n" + replayer.Output[Math.Max(0, replayer.Output.Length - 4000)..]);
    }
}
