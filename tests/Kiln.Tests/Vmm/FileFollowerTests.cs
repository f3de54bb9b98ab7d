using System.Text;
using Kiln.Tests.Support;
using Kiln.Vmm;
using Kiln.Vmm.Telemetry;

namespace Kiln.Tests.Vmm;

public sealed class FileFollowerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<List<string>> TakeAsync(IAsyncEnumerable<ReadOnlyMemory<byte>> lines, int count)
    {
        var taken = new List<string>();
        await foreach (var line in lines)
        {
            taken.Add(Encoding.UTF8.GetString(line.Span));
            if (taken.Count == count)
                break;
        }
        return taken;
    }

    [Fact]
    public async Task A_fifo_opens_before_any_writer_and_streams_lines_as_they_are_written()
    {
        using var root = new TempRoot();
        var fifo = root.Combine("m.fifo");
        FirecrackerMetricsReader.CreateFifo(fifo);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));

        var reading = TakeAsync(FileFollower.ReadLinesAsync(fifo, cancellationToken: timeout.Token), 3);
        // Two writers one after the other: the follow outlives a writer closing the FIFO.
        await File.AppendAllTextAsync(fifo, "one\ntw", Ct);
        await File.AppendAllTextAsync(fifo, "o\nthree\n", Ct);

        Assert.Equal(["one", "two", "three"], await reading);
    }

    [Fact]
    public async Task Following_a_fifo_ends_once_until_completes_and_what_was_written_is_read()
    {
        using var root = new TempRoot();
        var fifo = root.Combine("m.fifo");
        FirecrackerMetricsReader.CreateFifo(fifo);
        var exited = new TaskCompletionSource();

        var reading = TakeAsync(FileFollower.ReadLinesAsync(fifo, new FollowOptions { Until = exited.Task }, Ct), int.MaxValue);
        await File.AppendAllTextAsync(fifo, "a\nb\nlast without newline", Ct);
        exited.SetResult();

        Assert.Equal(["a", "b", "last without newline"], await reading.WaitAsync(TimeSpan.FromSeconds(30), Ct));
    }

    [Fact]
    public async Task Cancelling_a_fifo_follow_ends_a_read_that_waits_for_data()
    {
        using var root = new TempRoot();
        var fifo = root.Combine("m.fifo");
        FirecrackerMetricsReader.CreateFifo(fifo);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var reading = TakeAsync(FileFollower.ReadLinesAsync(fifo, cancellationToken: cancel.Token), 1);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(TimeSpan.FromSeconds(30), Ct));
    }

    [Fact]
    public async Task A_regular_file_is_followed_across_a_rotation_without_losing_a_line()
    {
        using var root = new TempRoot();
        var path = root.Combine("console.log");
        await File.WriteAllTextAsync(path, "before\n", Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var lines = FileFollower.ReadLinesAsync(path, cancellationToken: timeout.Token).GetAsyncEnumerator(timeout.Token);

        Assert.True(await lines.MoveNextAsync());
        Assert.Equal("before", Encoding.UTF8.GetString(lines.Current.Span));
        // The writer keeps its handle on the old file while it is renamed away, then moves to a new one.
        using (var writer = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            File.Move(path, path + ".1");
            writer.Write("late in the old file\n"u8);
        }
        await File.WriteAllTextAsync(path, "in the new file\n", Ct);

        var rest = new List<string>();
        while (rest.Count < 2 && await lines.MoveNextAsync())
            rest.Add(Encoding.UTF8.GetString(lines.Current.Span));
        await lines.DisposeAsync();

        Assert.Equal(["late in the old file", "in the new file"], rest);
    }

    [Fact]
    public async Task Without_follow_a_file_is_read_to_its_end_and_long_lines_are_cut()
    {
        using var root = new TempRoot();
        var path = root.Combine("f.log");
        await File.WriteAllTextAsync(path, "short\n" + new string('x', 100) + "\nend", Ct);

        var lines = await TakeAsync(FileFollower.ReadLinesAsync(path, new FollowOptions { Follow = false, MaxLineBytes = 10 }, Ct), int.MaxValue);

        Assert.Equal(["short", "xxxxxxxxxx", "end"], lines);
    }

    [Fact]
    public async Task Start_at_end_skips_what_a_file_held_before()
    {
        using var root = new TempRoot();
        var path = root.Combine("f.log");
        await File.WriteAllTextAsync(path, "old\n", Ct);
        var done = new TaskCompletionSource();

        var reading = TakeAsync(FileFollower.ReadLinesAsync(path, new FollowOptions { StartAtEnd = true, Until = done.Task }, Ct), int.MaxValue);
        await Eventually.FileContainsAsync(path, "old", TimeSpan.FromSeconds(5));
        await File.AppendAllTextAsync(path, "new\n", Ct);
        done.SetResult();

        var lines = await reading.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.DoesNotContain("old", lines);
    }
}
