using Kiln.Api;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Api;

/// <summary>
/// <see cref="FirecrackerClient.PutGuestDrivesAsync"/>: the requests go out together and the answers are read in
/// order, each checked as a lone request's answer would be.
/// </summary>
public sealed class PipelinedRequestTests : IDisposable
{
    private const string InstanceJson = """{"id":"sandbox-1","state":"Not started","vmm_version":"1.16.1","app_name":"Firecracker"}""";

    private static readonly Drive[] Drives =
    [
        new() { DriveId = "a", PathOnHost = "/img/a", IsRootDevice = false },
        new() { DriveId = "b", PathOnHost = "/img/b", IsRootDevice = false, IsReadOnly = true },
        new() { DriveId = "c", PathOnHost = "/img/c", IsRootDevice = false },
    ];

    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string SocketPath => _dir.File("api.sock");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Fails (instead of hanging) when the client waits for an answer before sending the next request.</summary>
    private static async Task<RecordedRequest> ReadBeforeAnsweringAsync(ServerConnection connection, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        return await connection.ReadRequestAsync(deadline.Token) ?? throw new InvalidOperationException("the client closed the connection");
    }

    [Fact]
    public async Task All_requests_are_sent_before_the_first_answer_and_answers_in_one_read_are_taken_apart()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            for (var i = 0; i < Drives.Length; i++)
                await ReadBeforeAnsweringAsync(connection, ct);
            // All three answers in one write: the client reads them in one go and must split them.
            await connection.WriteAsync(string.Concat(Enumerable.Repeat(ScriptedUnixServer.NoContent(), Drives.Length)), ct);
            while (await connection.ReadRequestAsync(ct) is not null)
                await connection.WriteAsync(ScriptedUnixServer.Response(200, InstanceJson), ct);
        });
        await using var client = new FirecrackerClient(SocketPath);

        await client.PutGuestDrivesAsync(Drives, Ct);

        var requests = new List<RecordedRequest>();
        for (var i = 0; i < Drives.Length; i++)
            requests.Add(await server.Requests.Reader.ReadAsync(Ct));
        Assert.Equal(["PUT /drives/a", "PUT /drives/b", "PUT /drives/c"], requests.Select(r => r.Line));
        var body = System.Text.Json.Nodes.JsonNode.Parse(requests[1].Body)!;
        Assert.Equal("b", (string?)body["drive_id"]);
        Assert.Equal("/img/b", (string?)body["path_on_host"]);
        Assert.True((bool?)body["is_read_only"]);
        // Nothing of the answers is left over to be mistaken for the next request's: the kept connection still works.
        Assert.Equal("sandbox-1", (await client.DescribeInstanceAsync(Ct)).Id);
        Assert.Equal(1, server.AcceptedConnections);
    }

    [Fact]
    public async Task An_answer_split_across_writes_is_put_back_together()
    {
        var answers = string.Concat(Enumerable.Repeat(ScriptedUnixServer.NoContent(), Drives.Length));
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            for (var i = 0; i < Drives.Length; i++)
                await ReadBeforeAnsweringAsync(connection, ct);
            // Cut inside the first answer's head and inside the second's: each read ends mid-answer.
            var firstCut = 10;
            var secondCut = ScriptedUnixServer.NoContent().Length + 20;
            await connection.WriteAsync(answers[..firstCut], ct);
            await Task.Yield();
            await connection.WriteAsync(answers[firstCut..secondCut], ct);
            await Task.Yield();
            await connection.WriteAsync(answers[secondCut..], ct);
            await connection.ReadRequestAsync(ct);
        });
        await using var client = new FirecrackerClient(SocketPath);

        await client.PutGuestDrivesAsync(Drives, Ct);

        Assert.Equal(1, server.AcceptedConnections);
    }

    [Fact]
    public async Task A_refusal_in_the_middle_is_thrown_naming_its_drive_and_the_next_call_uses_a_fresh_connection()
    {
        var connections = 0;
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            if (Interlocked.Increment(ref connections) == 1)
            {
                for (var i = 0; i < Drives.Length; i++)
                    await ReadBeforeAnsweringAsync(connection, ct);
                await connection.WriteAsync(ScriptedUnixServer.NoContent() + ScriptedUnixServer.Fault(400, "Unable to create the block device: BackingFile") + ScriptedUnixServer.NoContent(), ct);
            }
            while (await connection.ReadRequestAsync(ct) is not null)
                await connection.WriteAsync(ScriptedUnixServer.Response(200, InstanceJson), ct);
        });
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerApiException>(() => client.PutGuestDrivesAsync(Drives, Ct));

        Assert.Equal(400, ex.StatusCode);
        Assert.Equal("Unable to create the block device: BackingFile", ex.FaultMessage);
        Assert.Equal("putGuestDriveByID PUT /drives/b", ex.Operation);
        // The third answer was never read: the connection cannot be trusted for the next request.
        Assert.Equal("sandbox-1", (await client.DescribeInstanceAsync(Ct)).Id);
        Assert.Equal(2, server.AcceptedConnections);
    }

    [Fact]
    public async Task A_connection_closed_after_an_answer_fails_the_next_request_as_unanswered()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            for (var i = 0; i < Drives.Length; i++)
                await ReadBeforeAnsweringAsync(connection, ct);
            await connection.WriteAsync(ScriptedUnixServer.Response(204, close: true), ct);
            // The script's end closes the connection.
        });
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerConnectionClosedException>(() => client.PutGuestDrivesAsync(Drives, Ct));

        Assert.Equal("putGuestDriveByID PUT /drives/b", ex.Operation);
        Assert.Contains("whether the request took effect is unknown", ex.Message);
    }

    [Fact]
    public async Task Each_answer_has_the_request_deadline_counted_from_the_answer_before_it()
    {
        var time = new FakeTimeProvider();
        var logger = new FakeLogger();
        var release = new SemaphoreSlim(0);
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            for (var i = 0; i < Drives.Length; i++)
                await ReadBeforeAnsweringAsync(connection, ct);
            // One answer per release; the third never comes.
            for (var i = 0; i < Drives.Length - 1; i++)
            {
                await release.WaitAsync(ct);
                await connection.WriteAsync(ScriptedUnixServer.NoContent(), ct);
            }
            await connection.ReadRequestAsync(ct);
        });
        var options = new FirecrackerClientOptions { RequestTimeout = TimeSpan.FromSeconds(3), TimeProvider = time, Logger = logger };
        await using var client = new FirecrackerClient(SocketPath, options);

        var call = client.PutGuestDrivesAsync(Drives, Ct);
        for (var i = 0; i < Drives.Length; i++)
            await server.Requests.Reader.ReadAsync(Ct);
        // Each answer 2.9 s after the one before: 5.8 s in all, past one 3 s deadline but inside each answer's own.
        time.Advance(TimeSpan.FromSeconds(2.9));
        release.Release();
        await LoggedAsync(logger, 1); // the client has read answer a (its next deadline is armed before it logs)
        time.Advance(TimeSpan.FromSeconds(2.9));
        release.Release();
        await LoggedAsync(logger, 2);
        time.Advance(TimeSpan.FromSeconds(2.9));
        Assert.False(call.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(0.1));

        var ex = await Assert.ThrowsAsync<FirecrackerTimeoutException>(() => call);
        Assert.Equal("putGuestDriveByID PUT /drives/c", ex.Operation);
        Assert.Equal(["PUT /drives/a", "PUT /drives/b"], logger.Collector.GetSnapshot().Select(r => r.Message.Split(' ')[2..4]).Select(p => string.Join(' ', p)));
    }

    [Fact]
    public async Task An_empty_list_sends_nothing_and_a_null_drive_is_refused_before_anything_is_sent()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.NoContent());
        await using var client = new FirecrackerClient(SocketPath);

        await client.PutGuestDrivesAsync([], Ct);
        await Assert.ThrowsAsync<ArgumentNullException>(() => client.PutGuestDrivesAsync([Drives[0], null!], Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => client.PutGuestDrivesAsync([Drives[0], new Drive { DriveId = "", IsRootDevice = false }], Ct));

        Assert.Equal(0, server.AcceptedConnections);
    }

    private static async Task LoggedAsync(FakeLogger logger, int count)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        while (logger.Collector.Count < count)
            await Task.Delay(1, deadline.Token);
    }
}
