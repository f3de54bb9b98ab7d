using System.Net.Sockets;
using System.Text;
using Kiln.Api;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Api;

public sealed class FirecrackerClientTests : IDisposable
{
    private const string InstanceJson = """{"id":"sandbox-1","state":"Not started","vmm_version":"1.16.1","app_name":"Firecracker"}""";

    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string SocketPath => _dir.File("api.sock");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Describe_instance_reads_an_answer_with_an_empty_reason_phrase()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.Response(200, InstanceJson));
        await using var client = new FirecrackerClient(SocketPath);

        var info = await client.DescribeInstanceAsync(Ct);

        Assert.Equal(new InstanceInfo { Id = "sandbox-1", State = InstanceState.NotStarted, VmmVersion = "1.16.1", AppName = "Firecracker" }, info);
        var request = await server.Requests.Reader.ReadAsync(Ct);
        Assert.Equal("GET / HTTP/1.1", $"{request.Line} {request.Version}");
        Assert.Equal("application/json", request.Headers["Accept"]);
    }

    [Fact]
    public async Task A_put_sends_compact_json_with_its_length_and_content_type()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.NoContent());
        await using var client = new FirecrackerClient(SocketPath);

        await client.PutGuestBootSourceAsync(new BootSource { KernelImagePath = "/k/vmlinux", BootArgs = "console=ttyS0 a+b" }, Ct);

        var request = await server.Requests.Reader.ReadAsync(Ct);
        Assert.Equal("PUT /boot-source", request.Line);
        Assert.Equal("""{"kernel_image_path":"/k/vmlinux","boot_args":"console=ttyS0 a+b"}""", request.Body);
        Assert.Equal(Encoding.UTF8.GetByteCount(request.Body).ToString(), request.Headers["Content-Length"]);
        Assert.Equal("application/json", request.Headers["Content-Type"]);
    }

    [Fact]
    public async Task A_bodiless_patch_still_says_its_length_is_zero()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.NoContent());
        await using var client = new FirecrackerClient(SocketPath);

        await client.StopBalloonHintingAsync(Ct);

        var request = await server.Requests.Reader.ReadAsync(Ct);
        Assert.Equal("PATCH /balloon/hinting/stop", request.Line);
        Assert.Equal("0", request.Headers["Content-Length"]);
        Assert.False(request.Headers.ContainsKey("Content-Type"));
    }

    [Fact]
    public async Task An_id_with_characters_not_allowed_in_a_path_is_percent_encoded_so_firecracker_can_answer()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.NoContent());
        await using var client = new FirecrackerClient(SocketPath);

        await client.PutGuestDriveByIDAsync(new Drive { DriveId = "bad id/x", IsRootDevice = false }, Ct);

        Assert.Equal("PUT /drives/bad%20id%2Fx", (await server.Requests.Reader.ReadAsync(Ct)).Line);
    }

    [Fact]
    public async Task Requests_reuse_one_connection()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.Response(200, InstanceJson));
        await using var client = new FirecrackerClient(SocketPath);

        for (var i = 0; i < 5; i++)
            await client.DescribeInstanceAsync(Ct);

        Assert.Equal(1, server.AcceptedConnections);
    }

    [Fact]
    public async Task A_connection_firecracker_closed_after_answering_is_replaced_before_the_next_request()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            if (await connection.ReadRequestAsync(ct) is not null)
                await connection.WriteAsync(ScriptedUnixServer.Response(200, InstanceJson), ct);
            // Falls off the end: the connection is closed after one answer.
        });
        await using var client = new FirecrackerClient(SocketPath);
        await client.DescribeInstanceAsync(Ct);
        await WaitUntilAsync(() => server.ClosedConnections == 1);

        var second = await client.DescribeInstanceAsync(Ct);

        Assert.Equal("sandbox-1", second.Id);
        Assert.Equal(2, server.AcceptedConnections);
    }

    [Fact]
    public async Task Concurrent_calls_are_sent_one_at_a_time()
    {
        var outstanding = 0;
        var overlapped = false;
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            while (await connection.ReadRequestAsync(ct) is not null)
            {
                if (Interlocked.Increment(ref outstanding) > 1 || connection.HasBufferedBytes)
                    overlapped = true;
                await Task.Yield();
                Interlocked.Decrement(ref outstanding);
                await connection.WriteAsync(ScriptedUnixServer.Response(200, InstanceJson), ct);
            }
        });
        await using var client = new FirecrackerClient(SocketPath);

        var answers = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => client.DescribeInstanceAsync(Ct)));

        Assert.All(answers, a => Assert.Equal("sandbox-1", a.Id));
        Assert.False(overlapped);
        Assert.Equal(1, server.AcceptedConnections);
    }

    [Fact]
    public async Task A_refusal_carries_the_status_the_operation_and_the_fault_message()
    {
        const string fault = "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)";
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.Fault(400, fault));
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerApiException>(() =>
            client.PutGuestBootSourceAsync(new BootSource { KernelImagePath = "/nope" }, Ct));

        Assert.Equal(400, ex.StatusCode);
        Assert.Equal("putGuestBootSource PUT /boot-source", ex.Operation);
        Assert.Equal(fault, ex.FaultMessage);
        Assert.Equal(SocketPath, ex.SocketPath);
        Assert.Contains(fault, ex.Message);
        Assert.Contains("putGuestBootSource PUT /boot-source", ex.Message);
    }

    [Fact]
    public async Task A_refusal_of_a_device_names_the_device_path()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.Fault(400, "Drive config error: A root block device already exists!"));
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerApiException>(() =>
            client.PutGuestDriveByIDAsync(new Drive { DriveId = "second", IsRootDevice = true }, Ct));

        Assert.Equal("putGuestDriveByID PUT /drives/second", ex.Operation);
    }

    [Fact]
    public async Task The_error_body_firecracker_sends_for_an_unparseable_request_line_gives_its_message()
    {
        // Verbatim from the transcripts: a raw newline inside the JSON string, then the connection is closed.
        const string body = "{ \"error\": \"Invalid HTTP Version: Unsupported HTTP version.\nAll previous unanswered requests will be dropped.\" }";
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.Response(400, body, close: true));
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerApiException>(() => client.DescribeInstanceAsync(Ct));

        Assert.Equal("Invalid HTTP Version: Unsupported HTTP version.\nAll previous unanswered requests will be dropped.", ex.FaultMessage);
        // The connection Firecracker closed is not reused.
        await Assert.ThrowsAsync<FirecrackerApiException>(() => client.DescribeInstanceAsync(Ct));
        Assert.Equal(2, server.AcceptedConnections);
    }

    [Fact]
    public async Task A_server_error_without_json_keeps_an_excerpt_of_the_body_in_the_message()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => "HTTP/1.1 500 \r\nContent-Length: 13\r\n\r\nsomething bad");
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerApiException>(() => client.GetMachineConfigurationAsync(Ct));

        Assert.Equal(500, ex.StatusCode);
        Assert.Null(ex.FaultMessage);
        Assert.Contains("something bad", ex.Message);
    }

    [Fact]
    public async Task No_socket_file_is_reported_as_socket_not_found()
    {
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerSocketNotFoundException>(() => client.DescribeInstanceAsync(Ct));

        Assert.Contains(SocketPath, ex.Message);
        Assert.Equal("describeInstance GET /", ex.Operation);
    }

    [Fact]
    public async Task A_stale_socket_file_nobody_listens_on_is_reported_as_connection_refused()
    {
        using var bound = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        bound.Bind(new UnixDomainSocketEndPoint(SocketPath));
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerConnectionRefusedException>(() => client.DescribeInstanceAsync(Ct));

        Assert.Contains("stale", ex.Message);
    }

    [Fact]
    public async Task A_vmm_that_hangs_up_without_answering_is_reported_as_connection_closed()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) => await connection.ReadRequestAsync(ct));
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerConnectionClosedException>(() =>
            client.LoadSnapshotAsync(new SnapshotLoadParams { SnapshotPath = "/s" }, Ct));

        Assert.Contains("without answering loadSnapshot PUT /snapshot/load", ex.Message);
    }

    [Fact]
    public async Task A_vmm_that_hangs_up_in_the_middle_of_its_answer_is_reported_with_what_came()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            await connection.ReadRequestAsync(ct);
            await connection.WriteAsync("HTTP/1.1 200 \r\nContent-Length: 90\r\n\r\n{\"id\":\"sand", ct);
        });
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerConnectionClosedException>(() => client.DescribeInstanceAsync(Ct));

        Assert.Contains("in the middle of its answer", ex.Message);
        Assert.Contains("{\"id\":\"sand", ex.Message);
    }

    [Fact]
    public async Task Garbage_instead_of_http_is_a_protocol_error_with_an_excerpt()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            await connection.ReadRequestAsync(ct);
            await connection.WriteAsync("SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n\r\n", ct);
        });
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerProtocolException>(() => client.DescribeInstanceAsync(Ct));

        Assert.StartsWith("SSH-2.0-OpenSSH_9.6\\r\\n", ex.Excerpt);
        Assert.Contains("SSH-2.0", ex.Message);
    }

    [Fact]
    public async Task A_success_whose_body_is_not_the_expected_record_is_a_protocol_error()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.Response(200, """{"id":"x"}"""));
        await using var client = new FirecrackerClient(SocketPath);

        var ex = await Assert.ThrowsAsync<FirecrackerProtocolException>(() => client.DescribeInstanceAsync(Ct));

        Assert.Equal("""{"id":"x"}""", ex.Excerpt);
        Assert.Contains(nameof(InstanceInfo), ex.Message);
    }

    [Fact]
    public async Task A_request_past_its_deadline_fails_with_a_timeout_and_the_next_one_uses_a_fresh_connection()
    {
        var time = new FakeTimeProvider();
        var hang = true;
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            while (await connection.ReadRequestAsync(ct) is not null)
            {
                if (Volatile.Read(ref hang))
                    await Task.Delay(Timeout.Infinite, ct);
                await connection.WriteAsync(ScriptedUnixServer.Response(200, InstanceJson), ct);
            }
        });
        var options = new FirecrackerClientOptions { RequestTimeout = TimeSpan.FromSeconds(3), TimeProvider = time };
        await using var client = new FirecrackerClient(SocketPath, options);

        var call = client.DescribeInstanceAsync(Ct);
        await server.Requests.Reader.ReadAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(2.9));
        Assert.False(call.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(0.1));
        var ex = await Assert.ThrowsAsync<FirecrackerTimeoutException>(() => call);

        Assert.Equal(TimeSpan.FromSeconds(3), ex.Timeout);
        Assert.Contains("within 3 s", ex.Message);
        Volatile.Write(ref hang, false);
        Assert.Equal("sandbox-1", (await client.DescribeInstanceAsync(Ct)).Id);
        Assert.Equal(2, server.AcceptedConnections);
    }

    [Fact]
    public async Task A_snapshot_gets_the_longer_snapshot_deadline()
    {
        var time = new FakeTimeProvider();
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            await connection.ReadRequestAsync(ct);
            await Task.Delay(Timeout.Infinite, ct);
        });
        var options = new FirecrackerClientOptions { RequestTimeout = TimeSpan.FromSeconds(1), SnapshotTimeout = TimeSpan.FromSeconds(60), TimeProvider = time };
        await using var client = new FirecrackerClient(SocketPath, options);

        var call = client.CreateSnapshotAsync(new SnapshotCreateParams { MemFilePath = "/m", SnapshotPath = "/s" }, Ct);
        await server.Requests.Reader.ReadAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.False(call.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        var ex = await Assert.ThrowsAsync<FirecrackerTimeoutException>(() => call);
        Assert.Equal(TimeSpan.FromSeconds(60), ex.Timeout);
    }

    [Fact]
    public async Task The_callers_cancellation_is_an_operation_cancelled_not_a_timeout()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            await connection.ReadRequestAsync(ct);
            await Task.Delay(Timeout.Infinite, ct);
        });
        await using var client = new FirecrackerClient(SocketPath);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var call = client.DescribeInstanceAsync(cts.Token);
        await server.Requests.Reader.ReadAsync(Ct);
        await cts.CancelAsync();

        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Equal(cts.Token, ex.CancellationToken);
    }

    [Fact]
    public async Task Cancelling_a_call_that_hangs_leaves_the_calls_queued_behind_it_to_succeed_on_a_new_connection()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            var first = IsFirstConnection();
            while (await connection.ReadRequestAsync(ct) is not null)
            {
                if (first)
                    await Task.Delay(Timeout.Infinite, ct);
                await connection.WriteAsync(ScriptedUnixServer.Response(200, InstanceJson), ct);
            }
        });
        await using var client = new FirecrackerClient(SocketPath);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var hanging = client.DescribeInstanceAsync(cts.Token);
        await server.Requests.Reader.ReadAsync(Ct);
        var queued = Enumerable.Range(0, 4).Select(_ => client.DescribeInstanceAsync(Ct)).ToArray();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => hanging);
        Assert.All(await Task.WhenAll(queued), a => Assert.Equal("sandbox-1", a.Id));
        Assert.Equal(2, server.AcceptedConnections);
    }

    private int _connectionsSeen;

    private bool IsFirstConnection() => Interlocked.Increment(ref _connectionsSeen) == 1;

    [Fact]
    public async Task A_token_cancelled_before_the_call_fails_without_contacting_firecracker()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.Response(200, InstanceJson));
        await using var client = new FirecrackerClient(SocketPath);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.DescribeInstanceAsync(new CancellationToken(canceled: true)));

        Assert.Equal(0, server.AcceptedConnections);
    }

    [Fact]
    public void A_socket_path_too_long_for_sun_path_is_refused_before_connecting()
    {
        var path = "/tmp/" + new string('s', 103);
        Assert.Equal(108, path.Length);

        var ex = Assert.Throws<ArgumentException>(() => new FirecrackerClient(path));

        Assert.Contains(path, ex.Message);
        Assert.Contains("108 bytes", ex.Message);
    }

    [Fact]
    public async Task Each_answered_request_is_logged_at_debug_with_method_path_and_status()
    {
        var logger = new FakeLogger();
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.NoContent());
        await using var client = new FirecrackerClient(SocketPath, new FirecrackerClientOptions { Logger = logger });

        await client.PutGuestDriveByIDAsync(new Drive { DriveId = "rootfs", IsRootDevice = true }, Ct);

        var record = Assert.Single(logger.Collector.GetSnapshot());
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, record.Level);
        Assert.StartsWith("Firecracker answered PUT /drives/rootfs with 204 in ", record.Message);
    }

    [Fact]
    public async Task Disposing_the_client_ends_a_request_in_flight_with_object_disposed()
    {
        await using var server = ScriptedUnixServer.Start(SocketPath, async (connection, ct) =>
        {
            await connection.ReadRequestAsync(ct);
            await Task.Delay(Timeout.Infinite, ct);
        });
        var client = new FirecrackerClient(SocketPath);

        var call = client.DescribeInstanceAsync(Ct);
        await server.Requests.Reader.ReadAsync(Ct);
        client.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => call);
    }

    [Fact]
    public async Task A_disposed_client_refuses_calls()
    {
        var client = new FirecrackerClient(SocketPath);
        await client.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.DescribeInstanceAsync(Ct));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        while (!condition())
            await Task.Delay(1, timeout.Token);
    }
}
