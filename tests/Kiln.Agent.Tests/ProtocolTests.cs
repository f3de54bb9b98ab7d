// The framing and its limits, against arbitrary input: whatever bytes arrive, a reader yields frames, reports a clean
// end, or throws AgentProtocolException — no other exception, no hang, and no allocation beyond the frame limit.
using System.Buffers.Binary;
using System.IO.Pipelines;
using FsCheck;
using FsCheck.Fluent;
using Kiln.Agent.Protocol;

namespace Kiln.Agent.Tests;

public sealed class ProtocolTests
{
    private static readonly FrameType[] Types = Enum.GetValues<FrameType>();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Gen<(FrameType Type, byte[] Payload)> FrameGen =>
        from type in Gen.Elements(Types)
        from length in Gen.Choose(0, 3 * FrameLimits.MaxChunk / 2)
        let clamped = Math.Min(length, FrameLimits.MaxPayload(type))
        from seed in Gen.Choose(0, int.MaxValue)
        select (type, Bytes(clamped, seed));

    private static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Header(uint length, byte type, byte reserved = 0)
    {
        var header = new byte[FrameLimits.HeaderSize];
        BinaryPrimitives.WriteUInt32BigEndian(header, length);
        header[4] = type;
        header[5] = reserved;
        return header;
    }

    // Reads every frame of `bytes`; returns the count, or the exception that ended the read.
    private static (int Frames, Exception? Error) ReadAll(byte[] bytes)
    {
        using var reader = new FrameReader(new MemoryStream(bytes));
        var count = 0;
        try
        {
            while (reader.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is not null)
                count++;
            return (count, null);
        }
        catch (Exception e)
        {
            return (count, e);
        }
    }

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Frames_written_then_read_come_back_with_the_same_types_and_payloads() =>
        Prop.ForAll(Gen.ListOf(FrameGen).Select(l => l.ToArray()).ToArbitrary(), frames =>
        {
            var stream = new MemoryStream();
            using (var writer = new FrameWriter(stream))
            {
                foreach (var (type, payload) in frames)
                    writer.WriteAsync(type, payload, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }

            stream.Position = 0;
            using var reader = new FrameReader(stream);
            foreach (var (type, payload) in frames)
            {
                var frame = reader.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                if (frame is not { } f || f.Type != type || !f.Payload.Span.SequenceEqual(payload))
                    return false;
            }

            return reader.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is null;
        });

    [FsCheck.Xunit.Property(MaxTest = 300)]
    public Property Arbitrary_bytes_give_frames_or_the_protocol_error_and_nothing_else(byte[] garbage)
    {
        var (_, error) = ReadAll(garbage);
        return (error is null or AgentProtocolException).Label(error?.ToString() ?? "");
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property A_valid_stream_cut_anywhere_inside_a_frame_is_a_protocol_error() =>
        Prop.ForAll(FrameGen.ToArbitrary(), Gen.Choose(1, int.MaxValue).ToArbitrary(), (frame, cutSeed) =>
        {
            var stream = new MemoryStream();
            using (var writer = new FrameWriter(stream))
                writer.WriteAsync(frame.Type, frame.Payload, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            var whole = stream.ToArray();
            var cut = 1 + (cutSeed % (whole.Length - 1));
            var (frames, error) = ReadAll(whole[..cut]);
            return frames == 0 && error is AgentProtocolException;
        });

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property A_declared_length_beyond_the_limit_is_refused_before_any_payload_is_read_or_allocated() =>
        Prop.ForAll(Gen.Elements(Types).ToArbitrary(), Gen.Choose(1, int.MaxValue).ToArbitrary(), (type, excess) =>
        {
            var length = (uint)Math.Min((long)FrameLimits.MaxPayload(type) + excess, uint.MaxValue);
            var bytes = Header(length, (byte)type);
            var before = GC.GetAllocatedBytesForCurrentThread();
            var (_, error) = ReadAll(bytes);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            return (error is AgentProtocolException && allocated < 64 * 1024).Label($"allocated {allocated}, {error}");
        });

    [FsCheck.Xunit.Property(MaxTest = 100)]
    public Property Unknown_frame_types_are_refused() =>
        Prop.ForAll(Gen.Choose(0, 255).Where(b => !FrameLimits.IsKnown((byte)b)).ToArbitrary(), type =>
            ReadAll(Header(0, (byte)type)).Error is AgentProtocolException);

    [FsCheck.Xunit.Property(MaxTest = 100)]
    public Property Non_zero_reserved_bytes_are_refused() =>
        Prop.ForAll(Gen.Choose(1, 255).ToArbitrary(), reserved =>
            ReadAll(Header(0, (byte)FrameType.Ok, (byte)reserved)).Error is AgentProtocolException);

    [FsCheck.Xunit.Property(MaxTest = 300)]
    public Property Any_payload_decodes_to_a_message_or_the_protocol_error(byte[] payload, bool asJsonObject)
    {
        // Half the cases look like JSON objects so the decoder gets past the first byte.
        var bytes = asJsonObject ? [(byte)'{', .. payload, (byte)'}'] : payload;
        var frame = new Frame(FrameType.Exec, bytes);
        Exception? error = null;
        try
        {
            Messages.Decode(frame, FrameType.Exec, AgentJsonContext.Default.ExecRequest);
        }
        catch (Exception e)
        {
            error = e;
        }

        return (error is null or AgentProtocolException).Label(error?.ToString() ?? "");
    }

    [Theory]
    [InlineData("""{"argv": null}""")]
    [InlineData("""{}""")]
    [InlineData("""{"argv": ["a"], "env": {"A": 1}}""")]
    [InlineData("""{"argv": ["a"], "timeoutMs": "soon"}""")]
    [InlineData("""null""")]
    [InlineData("""[1,2]""")]
    public void Malformed_exec_requests_are_protocol_errors(string json)
    {
        var frame = new Frame(FrameType.Exec, System.Text.Encoding.UTF8.GetBytes(json));

        Assert.Throws<AgentProtocolException>(() => Messages.Decode(frame, FrameType.Exec, AgentJsonContext.Default.ExecRequest));
    }

    [Fact]
    public void A_frame_of_another_type_than_expected_is_a_protocol_error() =>
        Assert.Throws<AgentProtocolException>(() => Messages.Decode(new Frame(FrameType.Ok, "{}"u8.ToArray()), FrameType.Hello, AgentJsonContext.Default.HelloMessage));

    [Fact]
    public async Task A_reader_waiting_on_a_silent_peer_ends_when_cancelled()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Header(10, (byte)FrameType.Data).AsMemory(0, 3), Ct);
        using var reader = new FrameReader(pipe.Reader.AsStream());
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var read = reader.ReadAsync(cts.Token).AsTask();

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);
    }

    [Fact]
    public async Task A_writer_refuses_a_payload_beyond_the_limit()
    {
        using var writer = new FrameWriter(new MemoryStream());

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () =>
            await writer.WriteAsync(FrameType.Data, new byte[FrameLimits.MaxChunk + 1], Ct));
    }

    [Fact]
    public void An_exec_request_too_large_for_its_frame_is_refused_when_encoded()
    {
        var request = new ExecRequest([new string('a', FrameLimits.MaxExecRequest)]);

        Assert.Throws<AgentProtocolException>(() => Messages.Encode(FrameType.Exec, request, AgentJsonContext.Default.ExecRequest));
    }

    [Fact]
    public async Task Chunked_writes_split_at_the_chunk_size_and_never_send_an_empty_frame()
    {
        var stream = new MemoryStream();
        using (var writer = new FrameWriter(stream))
            await writer.WriteChunkedAsync(FrameType.Stdin, new byte[(2 * FrameLimits.MaxChunk) + 1], Ct);
        stream.Position = 0;
        using var reader = new FrameReader(stream);
        var sizes = new List<int>();
        while (await reader.ReadAsync(Ct) is { } frame)
            sizes.Add(frame.Payload.Length);

        Assert.Equal([FrameLimits.MaxChunk, FrameLimits.MaxChunk, 1], sizes);
    }
}
