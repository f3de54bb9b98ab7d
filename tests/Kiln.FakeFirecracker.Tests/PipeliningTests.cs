using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>
/// HTTP pipelining on the API socket, which Kiln uses for the placeholder pool's drives: Firecracker's micro_http
/// parses every request one read brings and its API thread serves them in order, so requests written together are
/// answered in order, each exactly as if it had been sent alone.
/// </summary>
public sealed class PipeliningTests
{
    private static CancellationToken Ct => Fc.Ct;

    public static TheoryData<string> Targets => FirecrackerTarget.Names;

    private static string Drive(string id, string path) => $$"""{"drive_id":"{{id}}","path_on_host":"{{path}}","is_root_device":false,"is_read_only":false}""";

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task Requests_written_together_are_answered_in_order_each_as_if_sent_alone(string target)
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, target: FirecrackerTarget.Require(target));
        var drives = Enumerable.Range(0, 8).Select(i => dir.File($"pool-{i}.img", 1024 * 1024)).ToArray();
        var missing = dir["missing.img"];
        using var client = await ApiClient.ConnectAsync(fc.Process.ApiSocket!, Ct);

        // Eight drives and a refused one in the middle: more than micro_http reads at once (1024 bytes), so requests
        // straddle its reads too.
        var requests = drives.Select((path, i) => ("PUT", $"/drives/drive_{i}", (string?)Drive($"drive_{i}", path))).ToList();
        requests.Insert(4, ("PUT", "/drives/broken", Drive("broken", missing)));
        var answers = await client.SendPipelinedAsync(requests, Ct);

        Assert.Equal([204, 204, 204, 204, 400, 204, 204, 204, 204], answers.Select(a => a.Status));
        var alone = await fc.Put("/drives/broken", Drive("broken", missing));
        Assert.Equal(400, alone.Status);
        Assert.Equal(Fc.Fault(alone), Fc.Fault(answers[4]));
        var config = JsonNode.Parse((await fc.Get("/vm/config")).Body)!;
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"drive_{i}"), config["drives"]!.AsArray().Select(d => (string?)d!["drive_id"]));
        // The connection stays usable after the pipelined exchange.
        Assert.Equal(200, (await client.SendAsync("GET", "/", null, Ct)).Status);
    }
}
