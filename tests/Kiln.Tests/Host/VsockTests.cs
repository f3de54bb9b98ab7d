using System.Net.Sockets;
using System.Text;
using Kiln.Host.Vsock;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Host;

public sealed class VsockTests
{
    private const uint EchoPort = 5000;
    private const uint ControlPort = 5100;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Targets => ["fake", "real"];

    private static VsockDialerOptions Quick(TimeSpan connect, TimeSpan? attempt = null) => new()
    {
        ConnectTimeout = connect,
        AttemptTimeout = attempt ?? connect,
        RetryInterval = TimeSpan.FromMilliseconds(20),
    };

    private static async Task<FirecrackerHypervisor> StartWithVsockAsync(TempRoot root, SandboxTarget target, string udsPath)
    {
        var driver = new FirecrackerHypervisor();
        try
        {
            await driver.CreateAsync("v", target.Config(root), Ct);
            await driver.AddDeviceAsync(new VsockDevice(3, udsPath), Ct);
            await driver.StartAsync(Ct);
            return driver;
        }
        catch
        {
            await driver.DisposeAsync();
            throw;
        }
    }

    private static SandboxTarget Target(string name, TempRoot root)
    {
        if (name == "fake")
            return SandboxTarget.Fake(root);
        // Skips with the reason when the machine has no real guest. The real guest must run the two services the
        // stand-in's README describes: echo on 5000, control on 5100.
        return SandboxTarget.Real();
    }

    private static async Task<string> ReadLineAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (await stream.ReadAsync(one, Ct) == 1 && one[0] != '\n')
            bytes.Add(one[0]);
        return Encoding.ASCII.GetString([.. bytes]);
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task The_dialer_reaches_the_guest_echo_service_and_bytes_go_both_ways(string targetName)
    {
        using var root = new TempRoot();
        var uds = root.Combine("v.sock");
        await using var driver = await StartWithVsockAsync(root, Target(targetName, root), uds);
        var dialer = new VsockDialer(uds, Quick(TimeSpan.FromSeconds(targetName == "real" ? 120 : 10)));

        await using var stream = await dialer.ConnectAsync(EchoPort, Ct);
        await stream.WriteAsync("ping\n"u8.ToArray(), Ct);

        Assert.Equal("ping", await ReadLineAsync(stream));
        Assert.Equal(EchoPort, stream.Port);
        Assert.True(stream.HostPort >= 1u << 30);
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task The_listener_accepts_the_connection_the_guest_makes_to_the_host(string targetName)
    {
        using var root = new TempRoot();
        var uds = root.Combine("v.sock");
        await using var driver = await StartWithVsockAsync(root, Target(targetName, root), uds);
        using var listener = VsockListener.Listen(uds, 7000);
        var dialer = new VsockDialer(uds, Quick(TimeSpan.FromSeconds(targetName == "real" ? 120 : 10)));
        await using var control = await dialer.ConnectAsync(ControlPort, Ct);

        var accept = listener.AcceptAsync(Ct);
        await control.WriteAsync("DIAL 7000\n"u8.ToArray(), Ct);
        await using var fromGuest = await accept;
        await fromGuest.WriteAsync("hello\n"u8.ToArray(), Ct);

        Assert.Equal("OK", await ReadLineAsync(control));
        Assert.Equal("hello", await ReadLineAsync(fromGuest));
        Assert.Equal(uds + "_7000", listener.Path);
        Assert.Null(fromGuest.HostPort);
    }

    [Fact]
    public async Task The_dialer_retries_until_the_vm_has_booted()
    {
        using var root = new TempRoot();
        var uds = root.Combine("v.sock");
        var dialer = new VsockDialer(uds, Quick(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30)));

        // Dialling first: the socket does not exist yet, then Firecracker holds the connection until the guest runs.
        var connecting = dialer.ConnectAsync(EchoPort, Ct);
        await using var driver = await StartWithVsockAsync(root, SandboxTarget.Fake(root), uds);
        await using var stream = await connecting;
        await stream.WriteAsync("late\n"u8.ToArray(), Ct);

        Assert.Equal("late", await ReadLineAsync(stream));
    }

    [Fact]
    public async Task A_port_nobody_listens_on_fails_as_refused_at_once_without_retries()
    {
        using var root = new TempRoot();
        var uds = root.Combine("v.sock");
        await using var driver = await StartWithVsockAsync(root, SandboxTarget.Fake(root), uds);
        var dialer = new VsockDialer(uds, Quick(TimeSpan.FromSeconds(10)) with { RetryWhileBooting = false });

        var error = await Assert.ThrowsAsync<VsockConnectException>(() => dialer.ConnectAsync(5999, Ct));

        Assert.Equal((VsockConnectFailure.Refused, 1, 5999u), (error.Failure, error.Attempts, error.Port));
    }

    [Fact]
    public async Task A_port_nobody_listens_on_is_retried_until_the_deadline_and_then_reported_as_refused()
    {
        using var root = new TempRoot();
        var uds = root.Combine("v.sock");
        await using var driver = await StartWithVsockAsync(root, SandboxTarget.Fake(root), uds);
        var dialer = new VsockDialer(uds, Quick(TimeSpan.FromMilliseconds(400)));

        var error = await Assert.ThrowsAsync<VsockConnectException>(() => dialer.ConnectAsync(5999, Ct));

        Assert.Equal(VsockConnectFailure.Refused, error.Failure);
        Assert.True(error.Attempts > 1, $"{error.Attempts} attempts");
    }

    [Fact]
    public async Task A_missing_socket_is_reported_as_unavailable_when_the_deadline_passes()
    {
        using var root = new TempRoot();
        var dialer = new VsockDialer(root.Combine("none.sock"), Quick(TimeSpan.FromMilliseconds(200)));

        var error = await Assert.ThrowsAsync<VsockConnectException>(() => dialer.ConnectAsync(EchoPort, Ct));

        Assert.Equal(VsockConnectFailure.SocketUnavailable, error.Failure);
    }

    [Fact]
    public async Task Bytes_the_guest_sends_right_after_OK_stay_in_the_stream()
    {
        using var root = new TempRoot();
        using var server = FakeVsockServer.Start(root.Combine("s.sock"), "OK 77\nhello\n"u8.ToArray());
        var dialer = new VsockDialer(server.Path, Quick(TimeSpan.FromSeconds(10)));

        await using var stream = await dialer.ConnectAsync(52, Ct);

        Assert.Equal(77u, stream.HostPort);
        Assert.Equal("hello", await ReadLineAsync(stream));
        Assert.Equal("CONNECT 52\n", await server.FirstLine);
    }

    [Theory]
    [InlineData("HELLO\n")]
    [InlineData("OK\n")]
    [InlineData("OK 12x\n")]
    [InlineData("OK 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17")]
    public async Task A_malformed_acknowledgement_fails_at_once(string answer)
    {
        using var root = new TempRoot();
        using var server = FakeVsockServer.Start(root.Combine("s.sock"), Encoding.ASCII.GetBytes(answer));
        var dialer = new VsockDialer(server.Path, Quick(TimeSpan.FromSeconds(10)));

        var error = await Assert.ThrowsAsync<VsockConnectException>(() => dialer.ConnectAsync(52, Ct));

        Assert.Equal((VsockConnectFailure.BadAcknowledgement, 1), (error.Failure, error.Attempts));
    }

    [Fact]
    public async Task An_unanswered_connect_is_abandoned_after_the_attempt_timeout_and_retried()
    {
        using var root = new TempRoot();
        using var server = FakeVsockServer.Start(root.Combine("s.sock"), answer: null);
        var dialer = new VsockDialer(server.Path, Quick(TimeSpan.FromMilliseconds(600), TimeSpan.FromMilliseconds(150)));

        var error = await Assert.ThrowsAsync<VsockConnectException>(() => dialer.ConnectAsync(52, Ct));

        Assert.Equal(VsockConnectFailure.NoAcknowledgement, error.Failure);
        Assert.True(error.Attempts > 1, $"{error.Attempts} attempts");
        await server.AllClosedAsync(Ct);
    }

    [Fact]
    public async Task An_attempt_cut_short_by_the_deadline_reports_what_the_last_answered_attempt_said()
    {
        using var root = new TempRoot();
        // The first CONNECT is refused; the second is never answered, so the overall deadline ends it mid-attempt.
        using var server = FakeVsockServer.Start(root.Combine("s.sock"), answer: null, refuseFirst: 1);
        var dialer = new VsockDialer(server.Path, Quick(TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(30)));

        var error = await Assert.ThrowsAsync<VsockConnectException>(() => dialer.ConnectAsync(52, Ct));

        Assert.Equal((VsockConnectFailure.Refused, 2), (error.Failure, error.Attempts));
        await server.AllClosedAsync(Ct);
    }

    [Fact]
    public async Task Cancelling_a_connect_throws_and_closes_its_socket()
    {
        using var root = new TempRoot();
        using var server = FakeVsockServer.Start(root.Combine("s.sock"), answer: null);
        var dialer = new VsockDialer(server.Path, Quick(TimeSpan.FromSeconds(30)));
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var connecting = dialer.ConnectAsync(52, cancel.Token);
        await server.FirstLine;
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting);
        await server.AllClosedAsync(Ct);
    }

    [Fact]
    public void Bad_dialer_options_are_refused_naming_the_property()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new VsockDialer("/tmp/x.sock", new VsockDialerOptions { AttemptTimeout = TimeSpan.Zero }));

        Assert.Equal(nameof(VsockDialerOptions.AttemptTimeout), error.ParamName);
    }

    [Fact]
    public void A_listener_path_longer_than_a_unix_socket_allows_is_refused()
    {
        Assert.Throws<ArgumentException>(() => VsockListener.Listen("/tmp/" + new string('a', 100), 7000));
    }

    [Fact]
    public async Task A_listener_replaces_a_stale_socket_file_refuses_a_live_one_and_removes_its_own()
    {
        using var root = new TempRoot();
        var uds = root.Combine("v.sock");
        // A listener that died leaves its socket file; .NET unlinks on dispose, so move the file away from it first.
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            dead.Bind(new UnixDomainSocketEndPoint(root.Combine("dead.sock")));
            File.Move(root.Combine("dead.sock"), uds + "_9");
        }
        Assert.True(File.Exists(uds + "_9"));

        var listener = VsockListener.Listen(uds, 9);
        var busy = Assert.Throws<VsockListenException>(() => VsockListener.Listen(uds, 9));
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(uds + "_9"), Ct);
        listener.Dispose();

        Assert.Equal(uds + "_9", busy.Path);
        Assert.False(File.Exists(uds + "_9"));
    }

    [Fact]
    public async Task Accept_is_cancellable()
    {
        using var root = new TempRoot();
        using var listener = VsockListener.Listen(root.Combine("v.sock"), 7);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var accepting = listener.AcceptAsync(cancel.Token);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await accepting);
    }

    /// <summary>A Unix socket server that reads the first line, answers with fixed bytes (or never) and records closes.</summary>
    private sealed class FakeVsockServer : IDisposable
    {
        private readonly Socket _listener;
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource<string> _firstLine = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<Task> _connections = [];
        private readonly Lock _gate = new();

        private int _toRefuse;

        private FakeVsockServer(string path, byte[]? answer, int refuseFirst)
        {
            _toRefuse = refuseFirst;
            Path = path;
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen(16);
            _ = AcceptLoop(answer);
        }

        public string Path { get; }

        public Task<string> FirstLine => _firstLine.Task;

        // refuseFirst: how many connections are closed right after their CONNECT line, as Firecracker does when no
        // guest process listens on the port.
        public static FakeVsockServer Start(string path, byte[]? answer, int refuseFirst = 0) => new(path, answer, refuseFirst);

        /// <summary>Completes when every connection accepted so far has been closed by the dialer.</summary>
        public Task AllClosedAsync(CancellationToken ct)
        {
            lock (_gate)
                return Task.WhenAll(_connections).WaitAsync(TimeSpan.FromSeconds(10), ct);
        }

        private async Task AcceptLoop(byte[]? answer)
        {
            while (true)
            {
                Socket conn;
                try
                {
                    conn = await _listener.AcceptAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                lock (_gate)
                    _connections.Add(Serve(conn, answer));
            }
        }

        // Ends when the dialer closes its side (a read of 0 bytes or a reset).
        private async Task Serve(Socket conn, byte[]? answer)
        {
            using (conn)
            {
                var line = new StringBuilder();
                var one = new byte[1];
                var buffer = new byte[256];
                try
                {
                    while (await conn.ReceiveAsync(one, SocketFlags.None, _stop.Token) == 1)
                    {
                        line.Append((char)one[0]);
                        if (one[0] == '\n')
                            break;
                    }
                    _firstLine.TrySetResult(line.ToString());
                    if (Interlocked.Decrement(ref _toRefuse) >= 0)
                        return;
                    if (answer is not null)
                        await conn.SendAsync(answer, SocketFlags.None, _stop.Token);
                    while (await conn.ReceiveAsync(buffer, SocketFlags.None, _stop.Token) > 0)
                    {
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException)
                {
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Dispose();
            _stop.Dispose();
        }
    }
}
