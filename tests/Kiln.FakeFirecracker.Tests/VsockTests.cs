using System.Net.Sockets;
using System.Text;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

public sealed class VsockTests
{
    private static async Task<Socket> Connect(string uds, string port)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(uds), Fc.Ct);
        await s.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, Fc.Ct);
        return s;
    }

    private static async Task<string> ReadLine(Socket s)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (await s.ReceiveAsync(one, SocketFlags.None, Fc.Ct) == 1)
        {
            sb.Append((char)one[0]);
            if (one[0] == '\n')
            {
                break;
            }
        }

        return sb.ToString();
    }

    [Fact]
    public async Task Host_connections_get_OK_with_ports_counting_up_from_2_pow_30_refused_ones_included()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.BootAsync();

        using var first = await Connect(dir["v.sock"], "5000");
        var firstReply = await ReadLine(first);
        using var refused = await Connect(dir["v.sock"], "5999");
        var refusedReply = await ReadLine(refused);
        using var third = await Connect(dir["v.sock"], "5000");
        var thirdReply = await ReadLine(third);

        Assert.Equal("OK 1073741824\n", firstReply);
        Assert.Equal("", refusedReply);
        Assert.Equal("OK 1073741826\n", thirdReply);
    }

    [Fact]
    public async Task The_guest_service_echoes_what_the_host_sends()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.BootAsync();
        using var s = await Connect(dir["v.sock"], "5000");
        await ReadLine(s);

        await s.SendAsync("ping\n"u8.ToArray(), SocketFlags.None, Fc.Ct);

        Assert.Equal("ping\n", await ReadLine(s));
    }

    [Fact]
    public async Task The_listening_ports_come_from_FAKE_FC_VSOCK_PORTS()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: new Dictionary<string, string> { ["FAKE_FC_VSOCK_PORTS"] = "1024,52" });
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.BootAsync();

        using var a = await Connect(dir["v.sock"], "52");
        using var b = await Connect(dir["v.sock"], "5000");

        Assert.StartsWith("OK ", await ReadLine(a));
        Assert.Equal("", await ReadLine(b));
    }

    [Fact]
    public async Task A_connection_made_before_instance_start_is_answered_once_the_guest_runs()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");

        using var s = await Connect(dir["v.sock"], "5000");
        var reply = ReadLine(s);
        // An API round trip after the CONNECT: no guest exists yet, so nothing may have answered it.
        Assert.Equal("Not started", await fc.StateAsync());
        Assert.False(reply.IsCompleted);
        await fc.BootAsync();

        Assert.StartsWith("OK ", await reply.WaitAsync(TimeSpan.FromSeconds(30), Fc.Ct));
    }

    [Fact]
    public async Task A_connection_made_while_paused_is_answered_after_resume()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.BootAsync();
        await fc.Ok("PATCH", "/vm", """{"state": "Paused"}""");

        using var s = await Connect(dir["v.sock"], "5000");
        var reply = ReadLine(s);
        await Task.WhenAny(reply, Task.Delay(300, Fc.Ct));
        Assert.False(reply.IsCompleted);
        await fc.Ok("PATCH", "/vm", """{"state": "Resumed"}""");

        Assert.StartsWith("OK ", await reply);
    }

    [Fact]
    public async Task Putting_the_vsock_on_another_path_removes_the_old_socket_and_a_kill_leaves_the_new_one()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 4, "uds_path": "{{dir["w.sock"]}}"}""");
        Assert.False(File.Exists(dir["v.sock"]));

        fc.Process.Signal(NativeMethods.SIGKILL);
        await fc.Process.WaitExitAsync(TimeSpan.FromSeconds(10), Fc.Ct);

        Assert.True(File.Exists(dir["w.sock"]));
    }

    [Fact]
    public async Task DIAL_on_the_control_port_makes_the_guest_connect_to_the_host_socket_for_that_port_and_echo()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.BootAsync();
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(dir["v.sock"] + "_7000"));
        listener.Listen(1);
        using var control = await Connect(dir["v.sock"], "5100");
        Assert.StartsWith("OK ", await ReadLine(control));

        await control.SendAsync("DIAL 7000\n"u8.ToArray(), SocketFlags.None, Fc.Ct);
        using var fromGuest = await listener.AcceptAsync(Fc.Ct);
        await fromGuest.SendAsync("hello\n"u8.ToArray(), SocketFlags.None, Fc.Ct);

        Assert.Equal("OK\n", await ReadLine(control));
        Assert.Equal("hello\n", await ReadLine(fromGuest));
    }

    [Fact]
    public async Task DIAL_to_a_port_nobody_listens_on_answers_RST_and_a_bad_line_ERR()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir);
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.BootAsync();
        using var control = await Connect(dir["v.sock"], "5100");
        await ReadLine(control);

        await control.SendAsync("DIAL 7001\nHELLO\n"u8.ToArray(), SocketFlags.None, Fc.Ct);

        Assert.Equal("RST\n", await ReadLine(control));
        Assert.Equal("ERR\n", await ReadLine(control));
    }

    [Fact]
    public async Task The_control_port_comes_from_FAKE_FC_VSOCK_CONTROL_PORT_and_0_turns_it_off()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: new Dictionary<string, string> { ["FAKE_FC_VSOCK_CONTROL_PORT"] = "0" });
        await fc.Ok("PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{dir["v.sock"]}}"}""");
        await fc.BootAsync();

        using var control = await Connect(dir["v.sock"], "5100");

        Assert.Equal("", await ReadLine(control));
    }
}
