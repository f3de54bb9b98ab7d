using System.Net.Sockets;
using Kiln.Interop;
using Kiln.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Interop;

// The one inotify watcher every start shares to wait for its API socket: a wait must end when the file appears
// whether that was before or after the wait began, end only its own waiters, and leave no watch behind.
public sealed class FileCreationWatcherTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Within = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_file_that_exists_before_the_wait_completes_it_at_once()
    {
        using var root = new TempRoot();
        var path = root.Combine("present");
        await File.WriteAllTextAsync(path, "", Ct);

        var wait = FileCreationWatcher.WaitAsync(path, Ct);

        Assert.True(wait.IsCompletedSuccessfully);
        await wait;
    }

    [Fact]
    public async Task A_unix_socket_bound_after_the_wait_began_completes_it()
    {
        using var root = new TempRoot();
        var path = root.Combine("api.sock");

        var wait = FileCreationWatcher.WaitAsync(path, Ct);
        Assert.False(wait.IsCompleted);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));

        await wait.WaitAsync(Within, Ct);
    }

    [Fact]
    public async Task A_file_renamed_into_place_completes_the_wait()
    {
        using var root = new TempRoot();
        var path = root.Combine("state.json");
        var wait = FileCreationWatcher.WaitAsync(path, Ct);
        await File.WriteAllTextAsync(path + ".tmp", "{}", Ct);

        File.Move(path + ".tmp", path);

        await wait.WaitAsync(Within, Ct);
    }

    [Fact]
    public async Task Another_file_in_the_same_directory_leaves_the_wait_pending()
    {
        using var root = new TempRoot();
        var path = root.Combine("api.sock");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var wait = FileCreationWatcher.WaitAsync(path, cts.Token);
        var other = FileCreationWatcher.WaitAsync(root.Combine("other"), Ct);

        await File.WriteAllTextAsync(root.Combine("other"), "", Ct);
        await other.WaitAsync(Within, Ct);

        Assert.False(wait.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
    }

    [Fact]
    public async Task Cancelling_a_wait_ends_it_as_cancelled_and_leaves_the_other_waits_in_its_directory()
    {
        using var root = new TempRoot();
        var path = root.Combine("api.sock");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var cancelled = FileCreationWatcher.WaitAsync(path, cts.Token);
        var kept = FileCreationWatcher.WaitAsync(path, Ct);

        await cts.CancelAsync();

        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.False(kept.IsCompleted);
        await File.WriteAllTextAsync(path, "", Ct);
        await kept.WaitAsync(Within, Ct);
    }

    [Fact]
    public async Task A_token_cancelled_before_the_wait_ends_it_at_once()
    {
        using var root = new TempRoot();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        var wait = FileCreationWatcher.WaitAsync(root.Combine("api.sock"), cts.Token);

        Assert.True(wait.IsCanceled);
    }

    [Fact]
    public async Task The_deadline_on_the_given_clock_ends_the_wait_with_a_timeout_naming_the_file()
    {
        using var root = new TempRoot();
        var path = root.Combine("api.sock");
        var time = new FakeTimeProvider();
        var wait = FileCreationWatcher.WaitAsync(path, TimeSpan.FromSeconds(10), time, Ct);

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<TimeoutException>(() => wait.WaitAsync(Within, Ct));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public async Task Many_waiters_in_many_directories_each_complete_when_their_own_file_appears()
    {
        using var root = new TempRoot();
        const int directories = 20;
        const int waitersPerFile = 3;
        var waits = new List<(string Path, Task Wait)>();
        for (var d = 0; d < directories; d++)
        {
            Directory.CreateDirectory(root.Combine($"d{d}"));
            for (var f = 0; f < 2; f++)
            {
                var path = root.Combine($"d{d}", $"f{f}");
                for (var w = 0; w < waitersPerFile; w++)
                    waits.Add((path, FileCreationWatcher.WaitAsync(path, Ct)));
            }
        }

        // Only the first file of each directory appears: its waiters end, the second file's keep waiting.
        for (var d = 0; d < directories; d++)
            await File.WriteAllTextAsync(root.Combine($"d{d}", "f0"), "", Ct);
        await Task.WhenAll(waits.Where(w => w.Path.EndsWith("f0", StringComparison.Ordinal)).Select(w => w.Wait)).WaitAsync(Within, Ct);

        Assert.All(waits.Where(w => w.Path.EndsWith("f1", StringComparison.Ordinal)), w => Assert.False(w.Wait.IsCompleted));
        for (var d = 0; d < directories; d++)
            await File.WriteAllTextAsync(root.Combine($"d{d}", "f1"), "", Ct);
        await Task.WhenAll(waits.Select(w => w.Wait)).WaitAsync(Within, Ct);
    }

    [Fact]
    public async Task Removing_the_directory_fails_its_waits_with_directory_not_found()
    {
        using var root = new TempRoot();
        var directory = Directory.CreateDirectory(root.Combine("sandbox")).FullName;
        var path = Path.Combine(directory, "api.sock");
        var wait = FileCreationWatcher.WaitAsync(path, Ct);

        Directory.Delete(directory);

        var e = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => wait.WaitAsync(Within, Ct));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Waiting_in_a_directory_that_does_not_exist_fails_with_directory_not_found()
    {
        using var root = new TempRoot();

        // Thrown by the call itself, not through its task: the caller learns before it awaits anything.
        Assert.Throws<DirectoryNotFoundException>(() => { _ = FileCreationWatcher.WaitAsync(root.Combine("missing", "api.sock"), Ct); });
    }

    [Fact]
    public async Task The_last_wait_in_a_directory_removes_its_watch()
    {
        using var root = new TempRoot();
        var path = root.Combine("api.sock");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var waits = Enumerable.Range(0, 3).Select(_ => FileCreationWatcher.WaitAsync(path, Ct)).ToList();
        var cancelled = FileCreationWatcher.WaitAsync(root.Combine("never"), cts.Token);
        Assert.True(FileCreationWatcher.IsWatching(root.Path));

        await File.WriteAllTextAsync(path, "", Ct);
        await Task.WhenAll(waits).WaitAsync(Within, Ct);
        Assert.True(FileCreationWatcher.IsWatching(root.Path)); // "never" still waits there
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);

        Assert.False(FileCreationWatcher.IsWatching(root.Path));
    }
}
