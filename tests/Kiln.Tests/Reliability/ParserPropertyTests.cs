using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Kiln.Api;
using Kiln.Host;
using Kiln.Sandbox;
using Kiln.Tests.Support;

namespace Kiln.Tests.Reliability;

/// <summary>
/// Malformed data fed to the parsers Kiln owns: each answers with its own failure (false, null, SandboxException),
/// never an unhandled exception; a corrupt state.json is reported and left as it was. Input counts per parser are in
/// docs/reliability.md (MaxTest below).
/// </summary>
public sealed class ParserPropertyTests
{
    private static readonly byte[] ValidHead = "HTTP/1.1 400 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 81"u8.ToArray();

    /// <summary>A valid input with a few bytes overwritten, inserted or cut: the malformed data that looks nearly right.</summary>
    private static Gen<byte[]> Mutations(byte[] valid) =>
        from edits in Gen.ListOf(
            from kind in Gen.Choose(0, 2)
            from at in Gen.Choose(0, valid.Length)
            from b in Gen.Choose(0, 255)
            select (Kind: kind, At: at, Byte: b))
        from cut in Gen.Choose(0, valid.Length)
        from truncate in Gen.Elements(false, true)
        select Mutate(valid, edits, truncate ? cut : valid.Length);

    private static byte[] Mutate(byte[] valid, IEnumerable<(int Kind, int At, int Byte)> edits, int length)
    {
        var bytes = valid.Take(length).ToList();
        foreach (var (kind, at, b) in edits)
        {
            var i = Math.Min(at, bytes.Count);
            switch (kind)
            {
                case 0 when i < bytes.Count: bytes[i] = (byte)b; break;
                case 1: bytes.Insert(i, (byte)b); break;
                case 2 when i < bytes.Count: bytes.RemoveAt(i); break;
            }
        }
        return [.. bytes];
    }

    private static Gen<byte[]> AnyBytes => Gen.OneOf(ArbMap.Default.GeneratorFor<byte[]>(),
        ArbMap.Default.GeneratorFor<string>().Select(s => Encoding.UTF8.GetBytes(s ?? "")));

    [Property(MaxTest = 2000)]
    public Property Http_response_heads_are_parsed_or_refused_never_thrown() =>
        Prop.ForAll(Gen.OneOf(Mutations(ValidHead), AnyBytes).ToArbitrary(), bytes =>
        {
            var parsed = HttpResponseHead.TryParse(bytes, out var head, out var error);
            _ = HttpResponseHead.FindEnd(bytes);
            _ = HttpResponseHead.Excerpt(bytes);
            return parsed
                ? error is null && head.StatusCode is >= 100 and <= 999 && head.ContentLength is null or >= 0
                : !string.IsNullOrEmpty(error);
        });

    [Property(MaxTest = 2000)]
    public Property Fault_bodies_give_their_message_or_null_never_throw() =>
        Prop.ForAll(Gen.OneOf(Mutations("{\"fault_message\":\"Invalid block config.\"}"u8.ToArray()),
            Mutations("{ \"error\": \"Invalid HTTP Version: Unsupported HTTP version.\nAll previous unanswered requests will be dropped.\" }"u8.ToArray()),
            AnyBytes).ToArbitrary(), bytes =>
        {
            _ = FaultMessage.From(bytes);
        });

    [Property(MaxTest = 500)]
    public bool A_fault_message_with_any_text_comes_back_as_that_text(string text)
    {
        var clean = new string((text ?? "").Where(c => !char.IsSurrogate(c)).ToArray());
        var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new ApiError { FaultMessage = clean }, FirecrackerJsonContext.Default.ApiError);
        return FaultMessage.From(body) == clean;
    }

    [Property(MaxTest = 2000)]
    public Property Proc_stat_lines_give_the_start_time_or_null_never_throw() =>
        Prop.ForAll(Gen.OneOf(
                Mutations("1234 (fire cracker)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 987654 1000 100 184467 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"u8.ToArray()),
                AnyBytes)
            .Select(b => Encoding.UTF8.GetString(b)).ToArbitrary(), line =>
        {
            _ = ProcFs.IsZombie(line);
            _ = ProcFs.ParseStartTime(line);
        });

    [Property(MaxTest = 500)]
    public bool A_stat_line_with_any_comm_gives_its_start_time(string comm, ulong start)
    {
        var name = (comm ?? "").Replace("\n", "", StringComparison.Ordinal);
        var line = $"42 ({name}) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 {start} 1000 100\n";
        return ProcFs.ParseStartTime(line) == start && !ProcFs.IsZombie(line);
    }

    [Property(MaxTest = 300)]
    public Property A_corrupt_state_file_is_reported_and_left_as_it_was() =>
        Prop.ForAll(Mutations(ValidStateFile.Value).ToArbitrary(), bytes =>
        {
            using var root = new TempRoot();
            var path = root.Combine("state.json");
            File.WriteAllBytes(path, bytes);
            try
            {
                // Still readable after the mutation (whitespace, a changed digit): fine, as long as it parses.
                _ = SandboxStateFile.TryReadAsync(path, TestContext.Current.CancellationToken).GetAwaiter().GetResult();
            }
            catch (SandboxException)
            {
            }
            Assert.Equal(bytes, File.ReadAllBytes(path));
        });

    [Fact]
    public async Task A_state_file_device_without_its_kind_is_reported_as_an_invalid_state_file()
    {
        using var root = new TempRoot();
        var path = root.Combine("state.json");
        var valid = System.Text.Encoding.UTF8.GetString(ValidStateFile.Value);
        Assert.Contains("\"kind\"", valid);
        await File.WriteAllTextAsync(path, valid.Replace("\"kind\"", "\"kinx\"", StringComparison.Ordinal), TestContext.Current.CancellationToken);

        var e = await Assert.ThrowsAsync<SandboxException>(() => SandboxStateFile.TryReadAsync(path, TestContext.Current.CancellationToken));

        Assert.Contains("is not valid", e.Message);
    }

    [Fact]
    public async Task A_driver_refuses_a_truncated_state_file_and_never_replaces_it()
    {
        using var root = new TempRoot();
        var config = SandboxTarget.Fake(root).Config(root);
        await using (var driver = new FirecrackerHypervisor())
            await driver.CreateAsync("torn", config, TestContext.Current.CancellationToken);
        var path = root.Combine("sb", "torn", "state.json");
        var whole = await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken);
        var torn = whole[..(whole.Length / 2)];
        await File.WriteAllBytesAsync(path, torn, TestContext.Current.CancellationToken);

        await using var again = new FirecrackerHypervisor();
        var e = await Assert.ThrowsAsync<SandboxException>(() => again.CreateAsync("torn", config, TestContext.Current.CancellationToken));

        Assert.Contains(path, e.Message);
        Assert.Equal(torn, await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken));
        Assert.Equal(["state.json"], Directory.GetFileSystemEntries(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    private static readonly Lazy<byte[]> ValidStateFile = new(() =>
    {
        using var root = new TempRoot();
        var path = root.Combine("state.json");
        new SandboxStateFile
        {
            Id = "prop",
            Config = SandboxTarget.Fake(root).Config(root),
            State = SandboxState.Running,
            Pid = 4242,
            StartTimeTicks = 987654,
            ExecutablePath = "/usr/bin/firecracker",
            SocketPath = root.Combine("sb", "prop", "firecracker.sock"),
            ConsolePath = root.Combine("sb", "prop", "console.log"),
            StartedAt = DateTimeOffset.UnixEpoch,
            PoolSlots = [new PoolSlot(0, "drive_1", "vdb", "/data/a.img", false)],
            Devices = [new BlockDevice("/data/q.img") { Id = "queued" }, new VsockDevice(3, "/run/v.sock")],
        }.WriteAsync(path, CancellationToken.None).GetAwaiter().GetResult();
        return File.ReadAllBytes(path);
    });

    /// <summary>
    /// What a vsock device answers to <c>CONNECT 52\n</c> before it closes the connection, against the dialer: a line
    /// <c>OK &lt;port&gt;\n</c> (a uint) within 32 bytes connects, with every byte after it in the stream; another line is a
    /// bad acknowledgement; 32 bytes without a newline too; fewer, then the close, is a refusal. Never another
    /// exception, never a hang (each case has 10 s). The expected outcome is worked out here independently.
    /// </summary>
    [Property(MaxTest = 500)]
    public Property Vsock_acknowledgements_connect_or_fail_typed_and_never_hang() =>
        Prop.ForAll(Gen.OneOf(Mutations("OK 5000\nhello"u8.ToArray()), AnyBytes,
            from digits in Gen.ArrayOf(Gen.Choose('0', '9').Select(c => (char)c))
            from rest in AnyBytes
            select (byte[])[.. Encoding.ASCII.GetBytes("OK " + new string(digits) + "\n"), .. rest]).ToArbitrary(), answer =>
        {
            var (outcome, port, after) = HandshakeAsync(answer).WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
            var newline = Array.IndexOf(answer, (byte)'\n', 0, Math.Min(answer.Length, 32));
            if (newline < 0)
                return outcome == (answer.Length >= 32 ? "BadAcknowledgement" : "Refused");
            var line = Encoding.Latin1.GetString(answer, 0, newline);
            var valid = line.Length > 3 && line.StartsWith("OK ", StringComparison.Ordinal) && line[3..].All(char.IsAsciiDigit)
                && System.Numerics.BigInteger.Parse(line[3..], System.Globalization.CultureInfo.InvariantCulture) <= uint.MaxValue;
            return valid
                ? outcome == "Connected" && port == uint.Parse(line[3..], System.Globalization.CultureInfo.InvariantCulture) && after.AsSpan().SequenceEqual(answer.AsSpan(newline + 1))
                : outcome == "BadAcknowledgement";
        });

    /// <summary>One dial against a one-shot vsock device that answers <paramref name="answer"/> and closes.</summary>
    private static async Task<(string Outcome, uint? Port, byte[] After)> HandshakeAsync(byte[] answer)
    {
        using var root = new TempRoot();
        var path = root.Combine("v.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var device = Task.Run(async () =>
        {
            using var conn = await listener.AcceptAsync();
            var one = new byte[1];
            while (await conn.ReceiveAsync(one) == 1 && one[0] != '\n')
            {
            }
            try
            {
                await conn.SendAsync(answer);
                conn.Shutdown(System.Net.Sockets.SocketShutdown.Send);
                // Until the dialer closes its side: the bytes after the line stay readable meanwhile.
                while (await conn.ReceiveAsync(one) > 0)
                {
                }
            }
            catch (System.Net.Sockets.SocketException)
            {
                // A dialer that refused the answer closes with bytes of it unread: the kernel resets the connection.
            }
        });
        var dialer = new Kiln.Host.Vsock.VsockDialer(path, new Kiln.Host.Vsock.VsockDialerOptions
        {
            ConnectTimeout = TimeSpan.FromSeconds(8),
            AttemptTimeout = TimeSpan.FromSeconds(8),
            RetryWhileBooting = false,
        });
        try
        {
            (string, uint?, byte[]) result;
            try
            {
                await using var stream = await dialer.ConnectAsync(52);
                using var rest = new MemoryStream();
                await stream.CopyToAsync(rest);
                result = ("Connected", stream.HostPort, rest.ToArray());
            }
            catch (Kiln.Host.Vsock.VsockConnectException e)
            {
                result = (e.Failure.ToString(), null, []);
            }
            await device;
            return result;
        }
        finally
        {
            listener.Close();
        }
    }
}
