namespace Kiln.Agent;

/// <summary>
/// Opens a fresh byte stream to the guest agent: for a microVM, a hybrid-vsock connection through Firecracker's vsock
/// Unix socket (<c>CONNECT port</c> / <c>OK …</c> done); in tests, any stream to an agent. Each agent operation uses
/// its own connection, so the connector is called once per operation.
/// </summary>
public delegate ValueTask<Stream> AgentConnector(CancellationToken cancellationToken);
