// The agent's way in through Firecracker's hybrid vsock: one attempt of Kiln's dialer (Host/Vsock) per connect, its
// typed failure handed on as an IOException, which AgentClient's readiness wait retries (it keeps its own deadline).
using Kiln.Host.Vsock;

namespace Kiln.Agent;

/// <summary>Connects an <see cref="AgentClient"/> to a guest port through a Firecracker vsock device.</summary>
public static class HybridVsockConnector
{
    /// <summary>A connector to vsock <paramref name="port"/> behind the device whose <c>uds_path</c> is <paramref name="udsPath"/>.</summary>
    /// <exception cref="ArgumentException">The path cannot be a Unix socket path.</exception>
    public static AgentConnector Create(string udsPath, int port, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        var dialer = new VsockDialer(udsPath, new VsockDialerOptions
        {
            RetryWhileBooting = false,
            TimeProvider = timeProvider ?? TimeProvider.System,
        });
        return async cancellationToken =>
        {
            try
            {
                return await dialer.ConnectAsync((uint)port, cancellationToken).ConfigureAwait(false);
            }
            catch (VsockConnectException e)
            {
                throw new IOException(e.Message, e);
            }
        };
    }
}
