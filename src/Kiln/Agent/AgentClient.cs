// The host side of Kiln's guest agent: exec, files, health and power-off over any connector (a microVM's hybrid
// vsock in production). Stateless: every operation opens its own connection, so calls may run concurrently.
using Kiln.Agent.Protocol;

namespace Kiln.Agent;

/// <summary>Talks to the guest agent of one microVM.</summary>
public sealed class AgentClient
{
    /// <summary>The vsock port the agent listens on by default.</summary>
    public const int DefaultPort = 1024;

    private readonly AgentConnector _connector;
    private readonly TimeProvider _time;

    /// <summary>A client that reaches the agent through <paramref name="connector"/>.</summary>
    public AgentClient(AgentConnector connector, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(connector);
        _connector = connector;
        _time = timeProvider ?? TimeProvider.System;
        Files = new AgentFiles(connector);
    }

    /// <summary>Files in the guest.</summary>
    public AgentFiles Files { get; }

    /// <summary>Runs <paramref name="argv"/> to completion and collects its output.</summary>
    /// <exception cref="AgentOperationException">The command could not start (<c>not-found</c>, <c>invalid-request</c>, …).</exception>
    /// <exception cref="OperationCanceledException">Cancelled: the command was killed in the guest.</exception>
    public Task<ExecResult> ExecAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken) =>
        ExecAsync(argv, new ExecOptions(), cancellationToken);

    /// <inheritdoc cref="ExecAsync(IReadOnlyList{string}, CancellationToken)"/>
    public async Task<ExecResult> ExecAsync(IReadOnlyList<string> argv, ExecOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        await using var process = await StartAsync(argv, options, options.StandardInput is not null, cancellationToken).ConfigureAwait(false);
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var copyOut = process.StandardOutput.CopyToAsync(stdout, cancellationToken);
        var copyErr = process.StandardError.CopyToAsync(stderr, cancellationToken);
        if (options.StandardInput is { } input)
        {
            await process.StandardInput.WriteAsync(input, cancellationToken).ConfigureAwait(false);
            await process.StandardInput.DisposeAsync().ConfigureAwait(false);
        }

        var exit = await process.Exit.WaitAsync(cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(copyOut, copyErr).ConfigureAwait(false);
        return new ExecResult(exit, stdout.ToArray(), stderr.ToArray());
    }

    /// <summary>Starts <paramref name="argv"/> and returns it as streams; dispose the handle to end (and if needed kill) it.</summary>
    /// <param name="argv">The command and its arguments.</param>
    /// <param name="options">Environment, directory, user and timeout (<see cref="ExecOptions.StandardInput"/> is ignored).</param>
    /// <param name="standardInput">Whether the caller will write to <see cref="ExecProcess.StandardInput"/>; otherwise stdin is empty.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public Task<ExecProcess> StartAsync(IReadOnlyList<string> argv, ExecOptions options, bool standardInput, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(argv);
        ArgumentNullException.ThrowIfNull(options);
        if (argv.Count == 0 || string.IsNullOrEmpty(argv[0]))
            throw new ArgumentException("argv must name a command.", nameof(argv));
        options.Validate();
        var request = new ExecRequest(
            argv,
            options.Environment,
            options.WorkingDirectory,
            options.User,
            options.Timeout is { } t ? (long)Math.Ceiling(t.TotalMilliseconds) : null,
            standardInput);
        return ExecProcess.StartAsync(_connector, request, cancellationToken);
    }

    /// <summary>Asks the agent how it is.</summary>
    public async Task<AgentHealth> HealthAsync(CancellationToken cancellationToken)
    {
        await using var connection = await AgentConnection.OpenAsync(_connector, FrameType.Health, ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        var reply = Messages.Decode(await connection.ReadAsync(cancellationToken).ConfigureAwait(false), FrameType.HealthReply, AgentJsonContext.Default.HealthMessage);
        return new AgentHealth(reply.Agent, reply.Version, reply.Pid, reply.IsInit, TimeSpan.FromMilliseconds(reply.UptimeMs));
    }

    /// <summary>
    /// Waits until the agent answers its health call: the guest is ready for exec. Connection failures (the guest is
    /// still booting, its listener not yet up) are retried with a short back-off until <paramref name="timeout"/>.
    /// </summary>
    /// <exception cref="TimeoutException">The agent did not answer in time; the last failure is the inner exception.</exception>
    public async Task<AgentHealth> WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var delay = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            Exception failure;
            try
            {
                return await HealthAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException && !cancellationToken.IsCancellationRequested)
            {
                failure = e;
            }

            var elapsed = _time.GetElapsedTime(started);
            if (elapsed >= timeout)
                throw new TimeoutException($"The guest agent did not answer within {timeout.TotalSeconds:0.###} s: {failure.Message}", failure);
            var wait = delay < timeout - elapsed ? delay : timeout - elapsed;
            await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(200).Ticks));
        }
    }

    /// <summary>Asks the agent (the guest's init) to power the guest off; returns once it acknowledged.</summary>
    /// <exception cref="AgentOperationException"><c>unsupported</c> when the agent is not the guest's init.</exception>
    public async Task PowerOffAsync(CancellationToken cancellationToken)
    {
        await using var connection = await AgentConnection.OpenAsync(_connector, FrameType.PowerOff, ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        await connection.ExpectAsync(FrameType.Ok, cancellationToken).ConfigureAwait(false);
    }
}
