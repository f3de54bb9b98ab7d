// GET / through FirecrackerClient against an in-process Unix-socket server answering like Firecracker, beside the
// same request bytes written and read on a raw socket against the same server: the floor no client can beat.
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using Kiln.Api;

namespace Kiln.Benchmarks;

[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet releases them in [GlobalCleanup].")]
public class ApiRoundTripBenchmark
{
    private const string Body = """{"id":"sandbox-1","state":"Running","vmm_version":"1.16.1","app_name":"Firecracker"}""";

    private static readonly byte[] Request = "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"u8.ToArray();

    private static readonly byte[] Answer = Encoding.ASCII.GetBytes(
        $"HTTP/1.1 200 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: {Body.Length}\r\n\r\n{Body}");

    private readonly byte[] _rawBuffer = new byte[4096];
    private string _dir = "";
    private MinimalFirecrackerServer? _server;
    private Socket? _raw;
    private FirecrackerClient? _client;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine("/tmp", "kiln-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
        var socketPath = Path.Combine(_dir, "api.sock");
        _server = new MinimalFirecrackerServer(socketPath, Answer);
        _raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _raw.Connect(new UnixDomainSocketEndPoint(socketPath));
        _client = new FirecrackerClient(socketPath);
        // Connect the client now so neither side pays for connecting inside the measurement.
        _client.DescribeInstanceAsync().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client?.Dispose();
        _raw?.Dispose();
        _server?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "raw socket (floor)")]
    public async Task<int> RawSocket()
    {
        var socket = _raw!;
        await socket.SendAsync(Request, SocketFlags.None);
        var received = 0;
        while (received < Answer.Length)
            received += await socket.ReceiveAsync(_rawBuffer.AsMemory(received), SocketFlags.None);
        return received;
    }

    [Benchmark(Description = "FirecrackerClient.DescribeInstanceAsync")]
    public Task<InstanceInfo> Client() => _client!.DescribeInstanceAsync();
}

/// <summary>Answers every request head on every connection with the same bytes, one thread per connection.</summary>
internal sealed class MinimalFirecrackerServer : IDisposable
{
    private readonly Socket _listener;
    private readonly byte[] _answer;
    private readonly List<Socket> _connections = [];

    public MinimalFirecrackerServer(string socketPath, byte[] answer)
    {
        _answer = answer;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(8);
        new Thread(AcceptLoop) { IsBackground = true, Name = "bench-accept" }.Start();
    }

    private void AcceptLoop()
    {
        while (true)
        {
            Socket connection;
            try
            {
                connection = _listener.Accept();
            }
            catch (SocketException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            lock (_connections)
                _connections.Add(connection);
            new Thread(() => Serve(connection)) { IsBackground = true, Name = "bench-serve" }.Start();
        }
    }

    private void Serve(Socket connection)
    {
        var buffer = new byte[8192];
        var count = 0;
        try
        {
            while (true)
            {
                var n = connection.Receive(buffer, count, buffer.Length - count, SocketFlags.None);
                if (n == 0)
                    return;
                count += n;
                // Requests here have no body: each ends at its blank line.
                int end;
                while ((end = buffer.AsSpan(0, count).IndexOf("\r\n\r\n"u8)) >= 0)
                {
                    connection.Send(_answer);
                    var rest = count - (end + 4);
                    buffer.AsSpan(end + 4, rest).CopyTo(buffer);
                    count = rest;
                }
            }
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        lock (_connections)
        {
            foreach (var connection in _connections)
                connection.Dispose();
        }
    }
}
