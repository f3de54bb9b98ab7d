// The agent as a service: health, the version handshake, and survival of broken clients.
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using Kiln.Agent.Protocol;
using Kiln.Agent.Tests.Support;

namespace Kiln.Agent.Tests;

public sealed class AgentServiceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Health_reports_the_version_and_that_a_host_agent_is_not_init()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var health = await agent.Client.HealthAsync(Ct);

        Assert.Equal((FrameLimits.Version, agent.Process.Id, false), (health.ProtocolVersion, health.Pid, health.IsInit));
        Assert.False(string.IsNullOrEmpty(health.AgentVersion));
    }

    [Fact]
    public async Task Power_off_is_refused_by_an_agent_that_is_not_init()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var e = await Assert.ThrowsAsync<AgentOperationException>(() => agent.Client.PowerOffAsync(Ct));

        Assert.Equal("unsupported", e.ErrorCode);
    }

    [Fact]
    public async Task A_client_with_another_protocol_version_is_refused_with_the_version_error()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        await using var stream = await Connectors.Unix(agent.SocketPath)(Ct);
        using var writer = new FrameWriter(stream);
        using var reader = new FrameReader(stream);

        await writer.WriteMessageAsync(FrameType.Hello, new HelloMessage(99), AgentJsonContext.Default.HelloMessage, Ct);
        var answer = await reader.ReadRequiredAsync(Ct);

        var error = Messages.Decode(answer, FrameType.Error, AgentJsonContext.Default.ErrorMessage);
        Assert.Equal("version", error.Code);
    }

    [Fact]
    public async Task Garbage_and_oversized_frames_close_only_their_own_connection()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        var oversized = new byte[FrameLimits.HeaderSize];
        BinaryPrimitives.WriteUInt32BigEndian(oversized, uint.MaxValue);
        oversized[4] = (byte)FrameType.Hello;

        foreach (var bytes in new[] { RandomNumberGenerator.GetBytes(4096), oversized, [0, 0, 0, 2, 1, 0, 0, 0, (byte)'{'] })
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(agent.SocketPath), Ct);
            await using var stream = new NetworkStream(socket);
            await socket.SendAsync(bytes, SocketFlags.None, Ct);
            socket.Shutdown(SocketShutdown.Send);
            using var reader = new FrameReader(stream);
            // The agent answers a protocol error and closes; it never hangs.
            while (await ReadOrEnd(reader) is { } frame)
                Assert.Equal(FrameType.Error, frame.Type);
        }

        var health = await agent.Client.HealthAsync(Ct);
        Assert.Equal(agent.Process.Id, health.Pid);
    }

    private static async Task<Frame?> ReadOrEnd(FrameReader reader)
    {
        try
        {
            return await reader.ReadAsync(Ct);
        }
        catch (IOException)
        {
            return null; // reset by the agent closing with unread bytes
        }
        catch (SocketException)
        {
            return null;
        }
    }

    [Fact]
    public async Task A_client_that_never_finishes_its_request_is_cut_off()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir["agent.sock"], AgentProcess.BinaryPath,
            ["--unix", dir["agent.sock"], "--exit-with-parent", "--request-timeout-ms", "300"]);
        await using var stream = await Connectors.Unix(agent.SocketPath)(Ct);
        await stream.WriteAsync(new byte[] { 0, 0, 0, 9, 1, 0, 0, 0, (byte)'{' }, Ct);
        using var reader = new FrameReader(stream);

        var end = await ReadOrEnd(reader);

        Assert.Null(end);
    }

    [Fact]
    public async Task Readiness_waits_for_an_agent_that_starts_listening_later()
    {
        using var dir = new TempDir();
        var client = new AgentClient(Connectors.Unix(dir["late.sock"]));
        var ready = client.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.False(ready.IsCompleted);

        await using var agent = await AgentProcess.StartAsync(dir["late.sock"], AgentProcess.BinaryPath, ["--unix", dir["late.sock"], "--exit-with-parent"]);
        var health = await ready;

        Assert.Equal(agent.Process.Id, health.Pid);
    }

    [Fact]
    public async Task Readiness_gives_up_at_its_deadline_with_the_last_failure()
    {
        using var dir = new TempDir();
        var client = new AgentClient(Connectors.Unix(dir["never.sock"]));

        var e = await Assert.ThrowsAsync<TimeoutException>(() => client.WaitUntilReadyAsync(TimeSpan.FromMilliseconds(200), Ct));

        Assert.IsType<SocketException>(e.InnerException);
    }
}
