// Replays a recording of real Firecracker (tests/assets/transcripts/*.json), or a scenario in the same format
// (tests/assets/scenarios/*.json), against a firecracker binary (the stand-in, or real Firecracker) and lists every
// difference, allowing only what differs by nature between two runs of Firecracker (transcripts/README.md):
// serde column numbers, the order of drives and network interfaces in /vm/config, a snapshot state file's size,
// the number in a vsock `OK <port>`, and in `output` (OutputComparison) durations, the interleaving of different
// threads' lines, vCPU threads' lines, guest console lines and the snapshot's CPU vendor. Two more allowances,
// because the files hold host paths of a different length: sizes are compared exactly for memory files and empty
// files only; a log or metrics file must merely be non-empty.
// Thread lists are compared on Firecracker's own names (firecracker, fc_api, fc_vcpu N): the .NET runtime adds its own
// threads, and KVM's kernel task (kvm-nx-lpage-re) does not exist without KVM.
// Against real Firecracker a scenario that boots uses the configured guest in place of the placeholder files, and
// waits for an event the recording saw (a console line, an exit, a vsock answer) up to the guest's boot timeout.
// A step marked `stand_in_differs` is a known stand-in bug: not counted against the stand-in (but reported once the
// stand-in gets it right, so the mark goes), always counted against real Firecracker.
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed partial class TranscriptReplayer : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly Dictionary<string, string> _placeholders;
    private readonly List<string> _differences = [];
    private readonly HashSet<string> _snapshotStateFiles = [];
    private readonly HashSet<string> _memoryFiles = [];
    private readonly FirecrackerTarget _target;
    private readonly RealGuest? _guest;
    private readonly HashSet<int> _standInDifferencesSeen = [];
    private JsonArray? _results;
    private FakeProcess? _process;
    private ApiClient? _client;
    private int _sockets = 1;

    /// <param name="dir">The run's temporary directory (<c>${TMP}</c>).</param>
    /// <param name="target">The binary to replay against; the stand-in by default.</param>
    /// <param name="guest">A real guest for a scenario that boots under real Firecracker; otherwise placeholder files.</param>
    public TranscriptReplayer(TempDir dir, FirecrackerTarget? target = null, RealGuest? guest = null)
    {
        _dir = dir;
        _target = target ?? FirecrackerTarget.StandIn;
        _guest = guest;
        _placeholders = new Dictionary<string, string>
        {
            ["${TMP}"] = dir.Path,
            ["${KERNEL}"] = dir.File("vmlinux.bin", 21 * 1024 * 1024),
            ["${INITRD}"] = dir.File("initrd.cpio", 2 * 1024 * 1024),
            ["${ROOTFS}"] = dir.File("rootfs.ext4", 64 * 1024 * 1024),
            ["${DATA_A}"] = dir.File("data-a.ext4", 8 * 1024 * 1024),
            ["${DATA_B}"] = dir.File("data-b.ext4", 16 * 1024 * 1024),
            ["${BOOT_ARGS}"] = "console=ttyS0 reboot=k panic=1",
        };
        if (guest is not null)
        {
            _placeholders["${KERNEL}"] = guest.Kernel;
            _placeholders["${INITRD}"] = guest.Initrd ?? _placeholders["${INITRD}"];
            _placeholders["${ROOTFS}"] = guest.Rootfs ?? _placeholders["${ROOTFS}"];
            _placeholders["${BOOT_ARGS}"] = $"console=ttyS0 reboot=k panic=1 {guest.KernelArgs}".TrimEnd();
            if (guest.VsockEchoPort is { } port and not 5000)
            {
                // The recording's guest echoed on port 5000; this one on another.
                _placeholders["CONNECT 5000\n"] = $"CONNECT {port}\n";
            }
        }
    }

    public IReadOnlyList<string> Differences => _differences;

    public string Output => _process?.Output ?? "";

    public static string TranscriptDirectory => Path.Combine(AppContext.BaseDirectory, "assets", "transcripts");

    private string Sub(string s)
    {
        foreach (var (k, v) in _placeholders)
        {
            s = s.Replace(k, v, StringComparison.Ordinal);
        }

        return s;
    }

    private JsonNode? Sub(JsonNode? node) => node is null ? null : JsonNode.Parse(Sub(node.ToJsonString()));

    private void Differ(int step, string what)
    {
        if (!_target.IsReal && step >= 0 && _results?[step]?["stand_in_differs"] is not null)
        {
            _standInDifferencesSeen.Add(step);
            return;
        }

        _differences.Add($"step {step}: {what}");
    }

    /// <summary>How long to wait for something the recording saw happen: at least the guest's boot timeout on real
    /// Firecracker, whose guest may be far slower than the recording's (nothing is waited longer when it must not happen).</summary>
    private TimeSpan Patience(int recordedMs, bool happened) =>
        TimeSpan.FromMilliseconds(happened && _guest is not null ? Math.Max(recordedMs, _guest.BootTimeout.TotalMilliseconds) : recordedMs);

    public async Task ReplayAsync(string file, CancellationToken ct)
    {
        var transcript = JsonNode.Parse(await File.ReadAllTextAsync(file, ct))!.AsObject();
        var args = transcript["args"]!.AsArray().Select(a => Sub(a!.GetValue<string>())).ToList();
        await StartAsync(args, transcript["api_ready_ms"] is not null, -1, ct);
        var results = _results = transcript["results"]!.AsArray();
        for (var i = 0; i < results.Count; i++)
        {
            await StepAsync(i, results[i]!.AsObject(), ct);
        }

        for (var i = 0; i < results.Count; i++)
        {
            if (!_target.IsReal && results[i]?["stand_in_differs"] is { } known && !_standInDifferencesSeen.Contains(i))
            {
                _differences.Add($"step {i}: marked stand_in_differs ({known}) but the stand-in now answers as Firecracker does: remove the mark");
            }
        }
    }

    private async Task StartAsync(List<string> args, bool expectReady, int step, CancellationToken ct)
    {
        _client?.Dispose();
        _client = null;
        var socket = _sockets == 1 ? _dir["api.sock"] : _dir[$"api{_sockets}.sock"];
        _sockets++;
        _process = FakeProcess.Start(args, socket, binary: _target.BinaryPath);
        var ready = await _process.WaitForApiAsync(TimeSpan.FromSeconds(20), ct);
        if (ready != expectReady)
        {
            Differ(step, $"api_ready {ready}, expected {expectReady}");
        }
    }

    private async Task StepAsync(int i, JsonObject entry, CancellationToken ct)
    {
        var step = entry["step"]!.AsObject();
        if (step["req"] is { } req)
        {
            var parts = req.GetValue<string>().Split(' ', 2);
            var body = step.ContainsKey("body") ? PythonJson(Sub(step["body"])) : null;
            await RequestAsync(i, entry, $"{parts[0]} {Sub(parts[1])} HTTP/1.1", body, ct);
        }
        else if (step["raw"] is { } raw)
        {
            var parts = raw.GetValue<string>().Split(' ', 2);
            await RequestAsync(i, entry, $"{parts[0]} {Sub(parts[1])} HTTP/1.1", Sub(step["data"]!.GetValue<string>()), ct);
        }
        else if (step.ContainsKey("threads"))
        {
            var expected = FakeProcess.FirecrackerThreads(entry["threads"]!.AsArray().Select(t => t!.GetValue<string>()));
            var actual = FakeProcess.FirecrackerThreads(_process!.Threads());
            if (!expected.SequenceEqual(actual))
            {
                Differ(i, $"threads [{string.Join(", ", actual)}], expected [{string.Join(", ", expected)}]");
            }
        }
        else if (step["signal"] is { } signal)
        {
            _process!.Signal(signal.GetValue<string>() switch
            {
                "SIGTERM" => NativeMethods.SIGTERM,
                "SIGKILL" => NativeMethods.SIGKILL,
                "SIGINT" => NativeMethods.SIGINT,
                "SIGHUP" => NativeMethods.SIGHUP,
                var other => throw new InvalidOperationException(other),
            });
        }
        else if (step["wait_exit_ms"] is { } wait)
        {
            var expected = entry["exit_code"]?.GetValue<int>();
            var code = await _process!.WaitExitAsync(Patience(wait.GetValue<int>(), expected is not null), ct);
            if (code != expected)
            {
                Differ(i, $"exit code {code?.ToString(CultureInfo.InvariantCulture) ?? "(still running)"}, expected {expected}");
            }
        }
        else if (step["file_exists"] is { } fileNode)
        {
            var path = Sub(fileNode.GetValue<string>());
            var exists = File.Exists(path) || Directory.Exists(path);
            if (exists != entry["exists"]!.GetValue<bool>())
            {
                Differ(i, $"{path} exists: {exists}");
            }
            else if (exists && entry["size"] is { } sizeNode && !_snapshotStateFiles.Contains(path))
            {
                var size = new FileInfo(path).Length;
                var expected = sizeNode.GetValue<long>();
                var ok = _memoryFiles.Contains(path) || expected == 0 ? size == expected : size > 0;
                if (!ok)
                {
                    Differ(i, $"{path} size {size}, expected {expected}");
                }
            }
        }
        else if (step["write_file"] is JsonObject write)
        {
            var path = Sub(write["path"]!.GetValue<string>());
            await File.WriteAllTextAsync(path, write["json"] is { } json ? PythonJson(Sub(json)) : Sub(write["text"]!.GetValue<string>()), ct);
        }
        else if (step["copy"] is JsonObject copy)
        {
            File.Copy(Sub(copy["from"]!.GetValue<string>()), Sub(copy["to"]!.GetValue<string>()), overwrite: true);
        }
        else if (step["remove"] is { } remove)
        {
            var path = Sub(remove.GetValue<string>());
            var existed = File.Exists(path);
            File.Delete(path);
            if (existed != entry["removed"]!.GetValue<bool>())
            {
                Differ(i, $"remove {path}: existed {existed}");
            }
        }
        else if (step["restart"] is JsonArray restart)
        {
            if (_process is not null)
            {
                await _process.DisposeAsync();
            }

            await StartAsync(restart.Select(a => Sub(a!.GetValue<string>())).ToList(), entry["api_ready"]!.GetValue<bool>(), i, ct);
        }
        else if (step["vsock"] is JsonObject vsock)
        {
            await VsockAsync(i, entry, vsock, ct);
        }
        else if (step["console_grep"] is { } grep)
        {
            var found = await _process!.WaitForOutputAsync(grep.GetValue<string>(), Patience(step["within_ms"]!.GetValue<int>(), entry["found"]!.GetValue<bool>()), ct);
            if (found != entry["found"]!.GetValue<bool>())
            {
                Differ(i, $"console_grep {grep}: found {found}");
            }
        }
        else if (step.ContainsKey("output"))
        {
            await OutputAsync(i, entry, ct);
        }
        else if (step["shell"] is { } shell)
        {
            await ShellAsync(i, entry, Sub(shell.GetValue<string>()), ct);
        }
        else if (step["sleep_ms"] is { } sleep)
        {
            // Part of the recorded scenario (time passing for the guest), not a readiness wait.
            await Task.Delay(sleep.GetValue<int>(), ct);
        }
        else
        {
            Differ(i, $"unknown step {step.ToJsonString()}");
        }
    }

    /// <summary>The process's lines since it started, compared as OutputComparison allows. A line may still be on its
    /// way through the pipe when the step runs, so a difference is re-checked as output arrives, up to a deadline.</summary>
    private async Task OutputAsync(int i, JsonObject entry, CancellationToken ct)
    {
        var expected = entry["output"]!.AsArray().Select(l => Sub(l!.GetValue<string>())).ToList();
        var deadline = DateTime.UtcNow.AddSeconds(3);
        while (true)
        {
            var output = _process!.Output;
            var difference = OutputComparison.Compare(expected, output);
            if (difference is null)
            {
                return;
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero || !await _process.WaitForOutputChangeAsync(output.Length, remaining, ct))
            {
                Differ(i, "output: " + difference);
                return;
            }
        }
    }

    private async Task ShellAsync(int i, JsonObject entry, string command, CancellationToken ct)
    {
        // A file operation the recording did between steps (copy and truncate a memory file); the command comes from
        // the test assets, never from outside.
        using var shell = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", command]))!;
        await shell.WaitForExitAsync(ct);
        if (shell.ExitCode != entry["rc"]!.GetValue<int>())
        {
            Differ(i, $"shell {command}: rc {shell.ExitCode}, expected {entry["rc"]}");
        }
    }

    private async Task RequestAsync(int i, JsonObject entry, string requestLine, string? body, CancellationToken ct)
    {
        if (requestLine.StartsWith("PUT /snapshot/create", StringComparison.Ordinal) && body is not null)
        {
            var b = JsonNode.Parse(body)!;
            _snapshotStateFiles.Add(b["snapshot_path"]!.GetValue<string>());
            _memoryFiles.Add(b["mem_file_path"]!.GetValue<string>());
        }

        ApiAnswer answer;
        try
        {
            _client ??= await ApiClient.ConnectAsync(_process!.ApiSocket!, ct);
            answer = await _client.SendRawAsync(requestLine, body is null ? null : Encoding.UTF8.GetBytes(body), ct);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            _client?.Dispose();
            _client = null;
            if (entry["error"] is null)
            {
                Differ(i, $"{requestLine}: connection failed ({e.Message})");
            }

            return;
        }

        if (entry["error"] is { } error)
        {
            Differ(i, $"{requestLine}: answered {answer.Status}, expected the connection to fail ({error})");
            return;
        }

        if (answer.Status != entry["status"]!.GetValue<int>())
        {
            Differ(i, $"{requestLine}: status {answer.Status}, expected {entry["status"]}; body {answer.Body}");
        }

        var expected = Sub(entry["body"]);
        if (expected is JsonObject raw && raw["_raw"] is { } rawText)
        {
            if (answer.Body != rawText.GetValue<string>())
            {
                Differ(i, $"{requestLine}: raw body {answer.Body}, expected {rawText}");
            }

            // Firecracker closes the connection after an unparseable request.
            _client?.Dispose();
            _client = null;
            return;
        }

        JsonNode? actual;
        try
        {
            actual = answer.IsEmpty ? null : JsonNode.Parse(answer.Body);
        }
        catch (JsonException)
        {
            Differ(i, $"{requestLine}: body is not JSON: {answer.Body}");
            return;
        }

        var a = Normalize(actual);
        var x = Normalize(expected);
        if (!JsonNode.DeepEquals(a, x))
        {
            Differ(i, $"{requestLine}: body {a?.ToJsonString() ?? "(empty)"}, expected {x?.ToJsonString() ?? "(empty)"}");
        }
    }

    private static JsonNode? Normalize(JsonNode? node)
    {
        if (node is null)
        {
            return null;
        }

        var copy = node.DeepClone();
        if (copy is JsonObject o)
        {
            if (o["fault_message"] is { } fault)
            {
                o["fault_message"] = ColumnRegex().Replace(fault.GetValue<string>(), "at line $1 column N");
            }

            foreach (var (key, idKey) in new[] { ("drives", "drive_id"), ("network-interfaces", "iface_id") })
            {
                if (o[key] is JsonArray arr)
                {
                    o[key] = new JsonArray(arr.Select(n => n!.DeepClone()).OrderBy(n => n![idKey]!.GetValue<string>(), StringComparer.Ordinal).ToArray());
                }
            }
        }

        return copy;
    }

    [GeneratedRegex(@"at line (\d+) column \d+")]
    private static partial Regex ColumnRegex();

    private async Task VsockAsync(int i, JsonObject entry, JsonObject vsock, CancellationToken ct)
    {
        var uds = Sub(vsock["uds"]!.GetValue<string>());
        var send = Sub(vsock["send"]!.GetValue<string>());
        var retryMs = vsock["retry_ms"]?.GetValue<int>() ?? 0;
        var deadline = DateTime.UtcNow + Patience(Math.Max(retryMs, 5000), retryMs > 0);
        (string Reply, bool Closed) result;
        while (true)
        {
            result = await VsockOnceAsync(uds, send, ct);
            if (retryMs == 0 || result.Reply.StartsWith("OK", StringComparison.Ordinal) || DateTime.UtcNow > deadline)
            {
                break;
            }
        }

        var expected = entry["vsock"]!.AsObject();
        var expectedReply = expected["reply"]?.GetValue<string>() ?? "";
        var expectedClosed = expected["closed"]?.GetValue<bool>() ?? false;
        var replyOk = expectedReply.StartsWith("OK ", StringComparison.Ordinal)
            ? OkRegex().IsMatch(result.Reply)
            : result.Reply == expectedReply;
        if (!replyOk || (expectedClosed && !result.Closed))
        {
            Differ(i, $"vsock {send.Trim()}: reply '{result.Reply}' closed {result.Closed}, expected '{expectedReply}' closed {expectedClosed}");
        }
    }

    [GeneratedRegex(@"^OK \d+\n$")]
    private static partial Regex OkRegex();

    private static async Task<(string Reply, bool Closed)> VsockOnceAsync(string uds, string send, CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(uds), ct);
            await socket.SendAsync(Encoding.ASCII.GetBytes(send), SocketFlags.None, ct);
            var reply = new StringBuilder();
            var buffer = new byte[256];
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(10));
            while (!reply.ToString().Contains('\n', StringComparison.Ordinal))
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return (reply.ToString(), true);
                }

                reply.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            return (reply.ToString(), false);
        }
        catch (SocketException)
        {
            return ("", true);
        }
    }

    /// <summary>The body as the recording replayer sent it: Python's json.dumps, with ", " and ": " separators.</summary>
    public static string PythonJson(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(node);
        return sb.ToString();

        void Write(JsonNode? n)
        {
            switch (n)
            {
                case null:
                    sb.Append("null");
                    break;
                case JsonObject o:
                    sb.Append('{');
                    var first = true;
                    foreach (var (k, v) in o)
                    {
                        sb.Append(first ? "" : ", ").Append(JsonSerializer.Serialize(k, TestJson.Default.String)).Append(": ");
                        Write(v);
                        first = false;
                    }

                    sb.Append('}');
                    break;
                case JsonArray a:
                    sb.Append('[');
                    for (var i = 0; i < a.Count; i++)
                    {
                        sb.Append(i == 0 ? "" : ", ");
                        Write(a[i]);
                    }

                    sb.Append(']');
                    break;
                default:
                    sb.Append(n.ToJsonString());
                    break;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class TestJson : System.Text.Json.Serialization.JsonSerializerContext;
