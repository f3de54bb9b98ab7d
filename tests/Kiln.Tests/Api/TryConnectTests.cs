using System.Net.Sockets;
using Kiln.Api;

namespace Kiln.Tests.Api;

// The readiness wait connects over and over while the VMM is still coming up: a socket that is missing or bound but
// not listening is an answer ("not yet"), not an exception, and the connection that succeeds is the one the first
// request uses.
public sealed class TryConnectTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string SocketPath => _dir.File("api.sock");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_missing_socket_is_not_yet_connected()
    {
        await using var client = new FirecrackerClient(SocketPath);

        Assert.False(await client.TryConnectAsync(Ct));
    }

    [Fact]
    public async Task A_socket_bound_but_not_listening_is_not_yet_connected()
    {
        using var bound = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        bound.Bind(new UnixDomainSocketEndPoint(SocketPath));
        await using var client = new FirecrackerClient(SocketPath);

        Assert.False(await client.TryConnectAsync(Ct));
        Assert.False(await client.TryConnectAsync(Ct)); // and again: nothing was kept from the refused attempt
    }

    [Fact]
    public async Task The_connection_that_succeeds_carries_the_first_request()
    {
        await using var server = ScriptedUnixServer.Answering(SocketPath, _ => ScriptedUnixServer.NoContent());
        await using var client = new FirecrackerClient(SocketPath);

        Assert.True(await client.TryConnectAsync(Ct));
        Assert.True(await client.TryConnectAsync(Ct)); // already open: nothing new
        await client.StartInstanceAsync(Ct);

        var request = await server.Requests.Reader.ReadAsync(Ct);
        Assert.Equal("PUT /actions", request.Line);
        Assert.Equal(1, server.AcceptedConnections);
    }

    [Fact]
    public async Task A_cancelled_token_is_cancellation_not_a_refusal()
    {
        await using var client = new FirecrackerClient(SocketPath);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.TryConnectAsync(cts.Token));
    }
}
