// The API server: connections are read concurrently, but requests are handled one at a time on the `fc_api` thread,
// as Firecracker's single-threaded micro_http server does. Answers carry micro_http's headers and an empty reason.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Kiln.FakeFirecracker.Interop;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Resources;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Http;

#pragma warning disable CA1001 // lives as long as the process
internal sealed class ApiServer
#pragma warning restore CA1001
{
    private readonly Socket _listener;
    private readonly VmmCore _vmm;
    private readonly int _maxPayload;

    // How many requests with each line ("PATCH /vm") fc_api has received; touched by fc_api alone.
    private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);
    private readonly BlockingCollection<(ApiRequest Request, TaskCompletionSource<(ApiResponse, int?)> Answer)> _queue = new();

    private ApiServer(Socket listener, VmmCore vmm, int maxPayload)
    {
        _listener = listener;
        _vmm = vmm;
        _maxPayload = maxPayload;
    }

    /// <summary>Binds the API socket; an existing path fails as Firecracker's bind does.</summary>
    /// <exception cref="IOException">The socket could not be bound.</exception>
    public static ApiServer Bind(string path, VmmCore vmm, int maxPayload)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(256);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException(e.Message, e);
        }

        return new ApiServer(socket, vmm, maxPayload);
    }

    private readonly ManualResetEventSlim _serving = new();

    /// <summary>Starts the fc_api thread and the accept loop; requests wait for <see cref="Serve()"/>.</summary>
    public void Start()
    {
        // Not disposed: fc_api may still be inside Set when Wait returns.
#pragma warning disable CA2000
        var named = new ManualResetEventSlim();
#pragma warning restore CA2000
        var thread = new Thread(() => Run(named)) { Name = "fc_api", IsBackground = true };
        thread.Start();
        named.Wait();
        _ = AcceptLoop();
    }

    /// <summary>Lets the fc_api thread answer (after a --config-file boot, as Firecracker's VMM does).</summary>
    public void Serve() => _serving.Set();

    private void Run(ManualResetEventSlim named)
    {
        NativeMethods.SetCurrentThreadName("fc_api");
        named.Set();
        _vmm.Log.Info("fc_api", "API server started.", new LogOrigin("src/firecracker/src/api_server/mod.rs", 80));
        _serving.Wait();
        foreach (var (request, answer) in _queue.GetConsumingEnumerable())
        {
            var start = Stopwatch.GetTimestamp();
            answer.SetResult(Handle(request));
            // api_server/mod.rs: after each answer, before the next request (seen from Debug up, 07-preboot-devices).
            var us = Stopwatch.GetElapsedTime(start).Ticks / 10;
            _vmm.Log.Write(LogLevel.Debug, "fc_api", $"Total previous API call duration: {us} us.", LogOrigin.ApiDuration);
        }
    }

    private async Task AcceptLoop()
    {
        while (true)
        {
            Socket conn;
            try
            {
                conn = await _listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (SocketException)
            {
                continue;
            }

            _ = Serve(conn);
        }
    }

    private async Task Serve(Socket conn)
    {
        using (conn)
        {
            var reader = new HttpConnectionReader(conn, _maxPayload);
            try
            {
                while (true)
                {
                    (ApiRequest Request, bool ExpectContinue)? next;
                    try
                    {
                        next = await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (HttpFramingException e)
                    {
                        var body = "{ \"error\": \"" + e.Message + "\nAll previous unanswered requests will be dropped.\" }";
                        await Send(conn, new ApiResponse(400, body)).ConfigureAwait(false);
                        return;
                    }

                    if (next is not { } got)
                    {
                        return;
                    }

                    // Continuations run inline on fc_api: queueing them could make fc_api create a thread-pool thread,
                    // and a new thread carries its creator's name ("fc_api") until it names itself.
                    var answer = new TaskCompletionSource<(ApiResponse, int?)>();
                    _queue.Add((got.Request, answer));
                    var (response, exitCode) = await answer.Task.ConfigureAwait(false);
                    await Send(conn, response).ConfigureAwait(false);
                    if (exitCode is { } code)
                    {
                        // Only a failed snapshot load gets here. rpc_interface.rs sets fatal_error = Restore after
                        // answering; main.rs then reports MainError::RunWithApi(BuildMicroVmError(Restore)), exit 1.
                        _vmm.Log.Error("main", "RunWithApiError error: Failed to build MicroVM: Loading snapshot failed..", LogOrigin.Main);
                        Console.Error.WriteLine("Error: RunWithApi(BuildMicroVmError(Restore))");
                        lock (_vmm.Gate)
                        {
                            _vmm.Exit(code);
                        }
                    }
                }
            }
            catch (SocketException)
            {
                // The client went away.
            }
        }
    }

    private static async Task Send(Socket conn, ApiResponse r)
    {
        var sb = new StringBuilder();
        sb.Append("HTTP/1.1 ").Append(r.Status.ToString(CultureInfo.InvariantCulture)).Append(" \r\n");
        sb.Append("Server: Firecracker API\r\nConnection: keep-alive\r\n");
        if (r.Deprecation)
        {
            sb.Append("Deprecation: true\r\n");
        }

        var body = r.Body is null ? [] : Encoding.UTF8.GetBytes(r.Body);
        if (r.Body is not null)
        {
            sb.Append("Content-Type: application/json\r\nContent-Length: ").Append(body.Length.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }

        sb.Append("\r\n");
        var head = Encoding.ASCII.GetBytes(sb.ToString());
        var all = new byte[head.Length + body.Length];
        head.CopyTo(all, 0);
        body.CopyTo(all, head.Length);
        await conn.SendAsync(all, SocketFlags.None).ConfigureAwait(false);
    }

    /// <summary>Handles one request on the fc_api thread; the int is an exit code to end with once it is answered.</summary>
    internal (ApiResponse, int?) Handle(ApiRequest request)
    {
        var log = _vmm.Log;
        var sw = Stopwatch.StartNew();
        log.Info("fc_api", $"The API server received a {Describe(request)}.", LogOrigin.Received);
        var knobs = _vmm.Knobs;
        // Only fc_api counts (one thread), for knobs that name the Nth request with a line ("PATCH /vm#2").
        var occurrence = _seen[request.Line] = _seen.GetValueOrDefault(request.Line) + 1;
        if (knobs.Hang.Any(h => Knobs.Matches(h, request.Line, occurrence)))
        {
            Thread.Sleep(Timeout.Infinite);
        }

        if (knobs.ExitAt is { } exitAt && Knobs.Matches(exitAt, request.Line, occurrence))
        {
            lock (_vmm.Gate)
            {
                _vmm.Exit(knobs.ExitCode);
            }
        }

        if (knobs.Fail.FirstOrDefault(f => Knobs.Matches(f.Request, request.Line, occurrence)) is { } canned)
        {
            log.Error("fc_api", $"Received Error. Status code: {canned.Status} {Reason(canned.Status)}. Message: {canned.Message}", LogOrigin.Fault);
            return (new ApiResponse(canned.Status, JsonText.Fault(canned.Message)), null);
        }

        var tokens = Router.Tokens(request.Path);
        var call = new ApiCall(_vmm, request, tokens);
        string? metric = null;
        try
        {
            ApiResponse response;
            var handler = Router.Route(request, tokens, out metric);
            if (metric is not null)
            {
                _vmm.Metrics.Count(metric + "_count");
            }

            lock (_vmm.Gate)
            {
                response = handler(call);
            }

            log.Info("fc_api", response.Status == 204
                ? "The request was executed successfully. Status code: 204 No Content."
                : "The request was executed successfully. Status code: 200 OK.", response.Status == 204 ? LogOrigin.Ok204 : LogOrigin.Ok200);
            if (call.TimedAction is { } action)
            {
                log.Info("fc_api", $"'{action}' API request took {VmmCore.Micros(sw)} us.", LogOrigin.ApiServer);
            }

            if (knobs.SlowAnswers.FirstOrDefault(s => Knobs.Matches(s.Request, request.Line, occurrence)) is { } slow)
            {
                // A test knob, not a behaviour: it only stretches the time between the action and its answer. The order
                // is Firecracker's (api_server/mod.rs: serve_vmm_action_request waits for the VMM's outcome, then
                // ApiServer::run responds, logging a failed respond only), so a caller that gives up meanwhile leaves
                // the change made. fc_api is held, so later requests wait too, as behind a busy API thread.
                Thread.Sleep(slow.DelayMs);
            }

            return (WithDeprecation(call, response), null);
        }
        catch (RequestErrorException e)
        {
            CountFail(metric);
            log.Error("fc_api", e.DebugForm, LogOrigin.Fault);
            return (new ApiResponse(e.Status, JsonText.Fault(e.Message)), null);
        }
        catch (VmmActionException e)
        {
            CountFail(metric);
            log.Error("fc_api", $"Received Error. Status code: {e.Status} {Reason(e.Status)}. Message: {e.Message}", LogOrigin.Fault);
            return (WithDeprecation(call, new ApiResponse(e.Status, JsonText.Fault(e.Message))), null);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException or KeyNotFoundException or ArgumentException)
        {
            // A stand-in bug, not Firecracker behaviour: say so loudly instead of dropping the connection.
            log.Error("fc_api", $"fake-firecracker internal error: {e}", LogOrigin.Fault);
            return (new ApiResponse(500, JsonText.Fault($"fake-firecracker internal error: {e.Message}")), null);
        }
        catch (SnapshotLoadFatalException e)
        {
            CountFail(metric);
            log.Error("fc_api", $"Received Error. Status code: 400 Bad Request. Message: {e.Message}", LogOrigin.Fault);
            return (new ApiResponse(400, JsonText.Fault(e.Message)), 1);
        }
    }

    private void CountFail(string? metric)
    {
        if (metric is not null)
        {
            _vmm.Metrics.Count(metric + "_fails");
        }
    }

    private ApiResponse WithDeprecation(ApiCall call, ApiResponse response)
    {
        if (call.Deprecation is null)
        {
            return response;
        }

        _vmm.Log.Warn("fc_api", call.Deprecation, LogOrigin.ApiServer);
        return response with { Deprecation = true };
    }

    private static string Reason(int status) => status switch
    {
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload too large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    };

    private string Describe(ApiRequest r)
    {
        var head = $"{r.MethodName} request on {RustDebug.Str(r.Path)}";
        if (r.Body is null || r.Path == "/mmds")
        {
            return head;
        }

        if (r.Path == "/cpu-config" && !_vmm.Log.Enabled(Vmm.LogLevel.Debug))
        {
            return head + ". To view the CPU template received by the API, configure log-level to DEBUG";
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(r.Body);
        }
        catch (DecoderFallbackException)
        {
            text = "inconvertible to UTF-8";
        }

        return $"{head} with body {RustDebug.Str(text)}";
    }
}
