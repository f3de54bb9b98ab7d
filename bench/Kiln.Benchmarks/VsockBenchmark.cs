// The vsock dialer against its floor on the same hybrid-vsock socket: connecting (Kiln's ConnectAsync against
// connect + CONNECT + reading OK by hand), a 64-byte echo round trip, and 1 MiB echoed in 64 KiB writes (throughput)
// through the dialer's VsockStream against the same bytes on a raw socket.
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Kiln.Host.Vsock;

namespace Kiln.Benchmarks;

[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet releases them in [GlobalCleanup].")]
public class VsockBenchmark
{
    private const int Chunk = 64 * 1024;
    private const int BulkBytes = 1024 * 1024;
    private static readonly byte[] Connect5000 = "CONNECT 5000\n"u8.ToArray();

    private readonly byte[] _small = new byte[64];
    private readonly byte[] _smallBack = new byte[64];
    private readonly byte[] _chunk = new byte[Chunk];
    private readonly byte[] _chunkBack = new byte[Chunk];
    private readonly byte[] _ack = new byte[32];
    private string _dir = "";
    private string _uds = "";
    private HybridVsockEchoServer? _server;
    private VsockDialer? _dialer;
    private Socket? _raw;
    private VsockStream? _stream;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine("/tmp", "kiln-vsb-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
        _uds = Path.Combine(_dir, "v.sock");
        _server = new HybridVsockEchoServer(_uds);
        _dialer = new VsockDialer(_uds);
        _raw = RawConnectAsync().GetAwaiter().GetResult();
        _stream = _dialer.ConnectAsync(5000).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stream?.Dispose();
        _raw?.Dispose();
        _server?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Description = "connect: raw (floor)")]
    public async Task RawConnect() => (await RawConnectAsync()).Dispose();

    [Benchmark(Description = "connect: dialer")]
    public async Task DialerConnect() => await (await _dialer!.ConnectAsync(5000)).DisposeAsync();

    [Benchmark(Baseline = true, Description = "64 B round trip: raw (floor)")]
    public async Task RawRoundTrip()
    {
        await _raw!.SendAsync(_small, SocketFlags.None);
        var got = 0;
        while (got < _small.Length)
            got += await _raw.ReceiveAsync(_smallBack.AsMemory(got), SocketFlags.None);
    }

    [Benchmark(Description = "64 B round trip: dialer stream")]
    public async Task DialerRoundTrip()
    {
        await _stream!.WriteAsync(_small);
        await _stream.ReadExactlyAsync(_smallBack);
    }

    [Benchmark(Description = "1 MiB echoed: raw (floor)")]
    public Task RawBulk() => BulkAsync(
        m => _raw!.SendAsync(m, SocketFlags.None).AsTask(),
        m => _raw!.ReceiveAsync(m, SocketFlags.None));

    [Benchmark(Description = "1 MiB echoed: dialer stream")]
    public Task DialerBulk() => BulkAsync(
        m => _stream!.WriteAsync(m).AsTask(),
        m => _stream!.ReadAsync(m));

    // Writer and reader run at once, as a stream user would, so neither side's buffers fill up.
    private async Task BulkAsync(Func<ReadOnlyMemory<byte>, Task> send, Func<Memory<byte>, ValueTask<int>> receive)
    {
        var writer = Task.Run(async () =>
        {
            for (var sent = 0; sent < BulkBytes; sent += Chunk)
                await send(_chunk);
        });
        var got = 0;
        while (got < BulkBytes)
            got += await receive(_chunkBack);
        await writer;
    }

    private async Task<Socket> RawConnectAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(_uds));
        await socket.SendAsync(Connect5000, SocketFlags.None);
        var got = 0;
        do
            got += await socket.ReceiveAsync(_ack.AsMemory(got), SocketFlags.None);
        while (_ack[got - 1] != '\n');
        return socket;
    }

    /// <summary>Alternating batches of each pair; prints medians and the median ratio per pair.</summary>
    public static async Task RunPairedAsync(int rounds)
    {
        var bench = new VsockBenchmark();
        bench.Setup();
        try
        {
            await Pair("connect", bench.RawConnect, bench.DialerConnect, 200, rounds);
            await Pair("64 B round trip", bench.RawRoundTrip, bench.DialerRoundTrip, 2000, rounds);
            await Pair("1 MiB echoed", bench.RawBulk, bench.DialerBulk, 20, rounds);
        }
        finally
        {
            bench.Cleanup();
        }
    }

    private static async Task Pair(string name, Func<Task> floor, Func<Task> subject, int batch, int rounds)
    {
        for (var i = 0; i < batch; i++)
        {
            await floor();
            await subject();
        }
        var floors = new List<double>(rounds);
        var subjects = new List<double>(rounds);
        for (var round = 0; round < rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < batch; i++)
                await floor();
            floors.Add(clock.Elapsed.TotalMicroseconds / batch);
            clock.Restart();
            for (var i = 0; i < batch; i++)
                await subject();
            subjects.Add(clock.Elapsed.TotalMicroseconds / batch);
        }
        var ratios = floors.Zip(subjects, (f, s) => s / f).ToList();
        var extra = name == "1 MiB echoed"
            ? string.Create(CultureInfo.InvariantCulture, $" (floor {1e6 / Median(floors):F0} MiB/s, dialer {1e6 / Median(subjects):F0} MiB/s)")
            : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name}: floor median {Median(floors):F2} us, dialer median {Median(subjects):F2} us, median ratio {Median(ratios):F3}{extra}"));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
