// Serves connections: each one starts with the version handshake and carries exactly one operation, then closes.
// One operation per connection keeps the protocol free of multiplexing: concurrency is simply more connections.
using System.Diagnostics;
using System.Net.Sockets;
using Kiln.Agent;
using Kiln.Agent.Protocol;

namespace Kiln.GuestAgent;

internal sealed class AgentServer : IDisposable
{
    public const string AgentVersion = "0.1.0";

    private readonly AgentOptions _options;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private readonly CancellationTokenSource _powerOff = new();

    public AgentServer(AgentOptions options) => _options = options;

    public void Dispose() => _powerOff.Dispose();

    /// <summary>Cancelled once a power-off was requested and acknowledged.</summary>
    public CancellationToken PowerOffRequested => _powerOff.Token;

    /// <summary>Accepts on <paramref name="listener"/> until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task ServeAsync(Socket listener, CancellationToken cancellationToken)
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                connections.RemoveAll(t => t.IsCompleted);
                connections.Add(HandleAsync(socket, cancellationToken));
            }
        }
        finally
        {
            await Task.WhenAll(connections);
        }
    }

    private async Task HandleAsync(Socket socket, CancellationToken cancellationToken)
    {
        await Task.Yield();
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        using var reader = new FrameReader(stream);
        using var writer = new FrameWriter(stream);
        try
        {
            await ServeOneAsync(reader, writer, cancellationToken);
        }
        catch (AgentProtocolException e)
        {
            await TryReportAsync(writer, ErrorCodes.Protocol, e.Message, cancellationToken);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The client went away; its operation ends with its connection.
        }
    }

    private async Task ServeOneAsync(FrameReader reader, FrameWriter writer, CancellationToken cancellationToken)
    {
        Frame request;
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            deadline.CancelAfter(_options.RequestTimeout);
            var hello = Messages.Decode(await reader.ReadRequiredAsync(deadline.Token), FrameType.Hello, AgentJsonContext.Default.HelloMessage);
            if (hello.Version != FrameLimits.Version)
            {
                await TryReportAsync(writer, ErrorCodes.Version, $"The agent speaks protocol version {FrameLimits.Version}, not {hello.Version}.", cancellationToken);
                return;
            }

            await writer.WriteMessageAsync(FrameType.Hello, new HelloMessage(FrameLimits.Version, AgentVersion), AgentJsonContext.Default.HelloMessage, deadline.Token);
            request = await reader.ReadRequiredAsync(deadline.Token);
        }
        var json = AgentJsonContext.Default;
        var files = new FileService(reader, writer);
        try
        {
            switch (request.Type)
            {
                case FrameType.Health:
                    await writer.WriteMessageAsync(FrameType.HealthReply, new HealthMessage(AgentVersion, FrameLimits.Version, Environment.ProcessId, _options.IsInit, _uptime.ElapsedMilliseconds), json.HealthMessage, cancellationToken);
                    break;
                case FrameType.PowerOff:
                    await PowerOffAsync(writer, cancellationToken);
                    break;
                case FrameType.Exec:
                    var exec = Messages.Decode(request, FrameType.Exec, json.ExecRequest);
                    await new ExecSession(reader, writer, _options.SelfPath).RunAsync(exec, cancellationToken);
                    break;
                case FrameType.FileWrite:
                    await files.WriteAsync(Messages.Decode(request, FrameType.FileWrite, json.FileWriteRequest), cancellationToken);
                    break;
                case FrameType.FileRead:
                    await files.ReadAsync(Messages.Decode(request, FrameType.FileRead, json.PathRequest), cancellationToken);
                    break;
                case FrameType.FileStat:
                    await files.StatAsync(Messages.Decode(request, FrameType.FileStat, json.PathRequest), cancellationToken);
                    break;
                case FrameType.FileList:
                    await files.ListAsync(Messages.Decode(request, FrameType.FileList, json.PathRequest), cancellationToken);
                    break;
                case FrameType.FileRemove:
                    await files.RemoveAsync(Messages.Decode(request, FrameType.FileRemove, json.FileRemoveRequest), cancellationToken);
                    break;
                default:
                    throw new AgentProtocolException($"{request.Type} is not a request.");
            }
        }
        catch (ArgumentException e)
        {
            await TryReportAsync(writer, ErrorCodes.InvalidRequest, e.Message, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            await TryReportAsync(writer, ErrorCodes.NotFound, e.Message, cancellationToken);
        }
        catch (UnauthorizedAccessException e)
        {
            await TryReportAsync(writer, ErrorCodes.PermissionDenied, e.Message, cancellationToken);
        }
        catch (IOException e) when (e is not AgentProtocolException && IsFileSystemError(e))
        {
            await TryReportAsync(writer, ErrorCodes.Io, e.Message, cancellationToken);
        }
    }

    // A file system IOException carries an HResult from errno; a broken connection surfaces as SocketException inside.
    private static bool IsFileSystemError(IOException e) => e.InnerException is not SocketException;

    private async Task PowerOffAsync(FrameWriter writer, CancellationToken cancellationToken)
    {
        if (!_options.IsInit)
        {
            await TryReportAsync(writer, ErrorCodes.Unsupported, "The agent is not the guest's init; it cannot power the guest off.", cancellationToken);
            return;
        }

        await writer.WriteAsync(FrameType.Ok, cancellationToken);
        await _powerOff.CancelAsync();
    }

    /// <summary>Sends an Error frame if the client is still there; long texts are cut to stay within the frame limit.</summary>
    internal static async Task TryReportAsync(FrameWriter writer, string code, string message, CancellationToken cancellationToken)
    {
        if (message.Length > 4096)
            message = message[..4096];
        try
        {
            await writer.WriteMessageAsync(FrameType.Error, new ErrorMessage(code, message), AgentJsonContext.Default.ErrorMessage, cancellationToken);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client is gone; the error has nobody to go to.
        }
    }
}
