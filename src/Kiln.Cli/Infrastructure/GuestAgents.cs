// Reaching a sandbox's guest agent: its vsock device (kiln run --vsock CID) is the way in, and the agent listens on
// vsock port 1024, dialled with Kiln's own vsock dialer (Host/Vsock) through the library's HybridVsockConnector.
using Kiln.Agent;
using Kiln.Sandbox;

namespace Kiln.Cli.Infrastructure;

internal static class GuestAgents
{
    /// <summary>A client for the agent of sandbox <paramref name="name"/>, once the agent answers its health call.</summary>
    /// <exception cref="CliFailureException">The sandbox is not running, has no vsock, or its agent never answered.</exception>
    public static async Task<AgentClient> ConnectAsync(CommandContext context, string name, CancellationToken cancellationToken)
    {
        var info = await Sandboxes.GetAsync(context, name, cancellationToken);
        if (info.State != SandboxState.Running)
            throw new CliFailureException($"sandbox '{name}' is {info.State.ToString().ToLowerInvariant()}, not running.");
        var vsock = info.Devices.OfType<VsockDevice>().FirstOrDefault()
            ?? throw new CliFailureException($"sandbox '{name}' has no vsock device: start it with 'kiln run --vsock 3' to reach its agent.");
        var client = new AgentClient(HybridVsockConnector.Create(vsock.UdsPath, AgentClient.DefaultPort, context.Time), context.Time);
        try
        {
            await client.WaitUntilReadyAsync(TimeSpan.FromSeconds(30), cancellationToken);
        }
        catch (TimeoutException e)
        {
            throw new CliFailureException($"the guest agent of '{name}' did not answer: {e.InnerException?.Message ?? e.Message}");
        }

        return client;
    }
}
