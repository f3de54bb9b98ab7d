// Exec through the guest agent, paired against a raw-socket floor on the same agent: the floor writes pre-encoded
// Hello + Exec frames on a plain Unix socket and reads frames until Exit with a hand-written loop — the least any
// client of this agent can do. Measured: the round trip of `true`, and 100 MiB of stdout (head -c … /dev/zero)
// drained to nowhere. The agent runs as a host process (Unix socket), as in the tests.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Kiln.Agent;

namespace Kiln.Benchmarks;

internal static class AgentExecBenchmark
{
    private const long StdoutBytes = 100L * 1024 * 1024;

    public static async Task RunPairedAsync(int pairs)
    {
        var dir = Directory.CreateDirectory(Path.Combine("/tmp", "kab" + Guid.NewGuid().ToString("N")[..8])).FullName;
        var socketPath = Path.Combine(dir, "agent.sock");
        using var agent = Process.Start(new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "kiln-agent"))
        {
            ArgumentList = { "--unix", socketPath, "--exit-with-parent" },
            UseShellExecute = false,
        })!;
        try
        {
            var client = new AgentClient(async ct =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                return new NetworkStream(s, ownsSocket: true);
            });
            await client.WaitUntilReadyAsync(TimeSpan.FromSeconds(30), CancellationToken.None);

            var trueRequest = Encode(["true"]);
            var bulkRequest = Encode(["head", "-c", StdoutBytes.ToString(CultureInfo.InvariantCulture), "/dev/zero"]);
            // Warm both paths (JIT, the agent's first spawns).
            for (var i = 0; i < 20; i++)
            {
                await client.ExecAsync(["true"], CancellationToken.None);
                await RawExecAsync(socketPath, trueRequest);
            }

            var floorTrue = new List<double>();
            var clientTrue = new List<double>();
            for (var i = 0; i < pairs; i++)
            {
                floorTrue.Add(await TimeAsync(() => RawExecAsync(socketPath, trueRequest)));
                clientTrue.Add(await TimeAsync(() => client.ExecAsync(["true"], CancellationToken.None)));
            }

            var floorBulk = new List<double>();
            var clientBulk = new List<double>();
            for (var i = 0; i < Math.Max(3, pairs / 10); i++)
            {
                floorBulk.Add(await TimeAsync(() => RawExecAsync(socketPath, bulkRequest)));
                clientBulk.Add(await TimeAsync(() => DrainAsync(client)));
            }

            Console.WriteLine($"exec true round trip, {pairs} alternating pairs (median):");
            Console.WriteLine($"  raw-socket floor  {Median(floorTrue):0.000} ms");
            Console.WriteLine($"  AgentClient       {Median(clientTrue):0.000} ms   ratio {Median(clientTrue) / Median(floorTrue):0.00}");
            Console.WriteLine($"100 MiB stdout, {floorBulk.Count} alternating pairs (median):");
            Console.WriteLine($"  raw-socket floor  {Median(floorBulk):0.0} ms  {StdoutBytes / 1048576.0 / (Median(floorBulk) / 1000):0} MiB/s");
            Console.WriteLine($"  AgentClient       {Median(clientBulk):0.0} ms  {StdoutBytes / 1048576.0 / (Median(clientBulk) / 1000):0} MiB/s   ratio {Median(clientBulk) / Median(floorBulk):0.00}");
        }
        finally
        {
            agent.Kill();
            await agent.WaitForExitAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task DrainAsync(AgentClient client)
    {
        await using var process = await client.StartAsync(["head", "-c", StdoutBytes.ToString(CultureInfo.InvariantCulture), "/dev/zero"], new ExecOptions(), false, CancellationToken.None);
        var copy = process.StandardOutput.CopyToAsync(Stream.Null);
        await process.StandardError.CopyToAsync(Stream.Null);
        await copy;
        var exit = await process.Exit;
        if (exit.ExitCode != 0)
            throw new InvalidOperationException($"head exited {exit.ExitCode}");
    }

    internal static async Task<double> TimeAsync(Func<Task> work)
    {
        var start = Stopwatch.GetTimestamp();
        await work();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static byte[] Frame(byte type, byte[] payload)
    {
        var frame = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)payload.Length);
        frame[4] = type;
        payload.CopyTo(frame, 8);
        return frame;
    }

    // Hello + Exec, encoded once by hand: what a minimal client sends.
    internal static byte[] Encode(string[] argv)
    {
        var exec = "{\"argv\":[" + string.Join(',', argv.Select(a => "\"" + a + "\"")) + "]}";
        return [.. Frame(1, "{\"version\":1}"u8.ToArray()), .. Frame(32, Encoding.UTF8.GetBytes(exec))];
    }

    // Sends the request and reads frames (discarding payloads) until the Exit frame (type 38).
    private static async Task RawExecAsync(string socketPath, byte[] request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        await socket.SendAsync(request, SocketFlags.None);
        await ReadUntilExitAsync(socket);
    }

    /// <summary>Reads frames (discarding payloads) until the Exit frame (type 38).</summary>
    internal static async Task ReadUntilExitAsync(Socket socket)
    {
        var buffer = new byte[256 * 1024];
        int count = 0, start = 0;
        while (true)
        {
            while (count - start >= 8)
            {
                var length = (int)BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(start));
                var type = buffer[start + 4];
                if (count - start < 8 + length)
                    break;
                if (type == 38)
                    return;
                start += 8 + length;
            }

            if (start > 0)
            {
                buffer.AsSpan(start, count - start).CopyTo(buffer);
                count -= start;
                start = 0;
            }

            var n = await socket.ReceiveAsync(buffer.AsMemory(count), SocketFlags.None);
            if (n == 0)
                throw new IOException("the agent closed before Exit");
            count += n;
        }
    }
}
