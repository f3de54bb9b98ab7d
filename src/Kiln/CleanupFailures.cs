// One way, everywhere in Kiln, to clean up after a failure without losing it. The pattern
// `catch { Cleanup(); throw; }` loses the first failure when the clean-up throws too: the caller would see "rmdir:
// busy" instead of "the snapshot failed". Here the first failure is what the caller gets — the same exception object,
// its own type and stack — and each clean-up failure rides along in its Data (so it works for any exception type:
// IOException, a Firecracker API error, Kiln's own), read back with CleanupFailures.Of. Never an AggregateException,
// which would hide the typed failure callers catch; never only a log line.
namespace Kiln;

/// <summary>Clean-up failures attached to the failure that made the clean-up run.</summary>
public static class CleanupFailures
{
    /// <summary>The <see cref="Exception.Data"/> key under which the clean-up failures are kept.</summary>
    public const string DataKey = "Kiln.CleanupFailures";

    /// <summary>The clean-up failures attached to <paramref name="failure"/>, in the order they happened (empty when none).</summary>
    public static IReadOnlyList<Exception> Of(Exception failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        return failure.Data[DataKey] is List<Exception> list ? list.AsReadOnly() : [];
    }

    /// <summary>
    /// The clean-up failures attached to <paramref name="failure"/> or to any exception inside it (its inner
    /// exceptions, an aggregate's members), outermost first.
    /// </summary>
    public static IReadOnlyList<Exception> All(Exception failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        var found = new List<Exception>();
        var seen = new HashSet<Exception>(ReferenceEqualityComparer.Instance);
        var pending = new Queue<Exception>([failure]);
        while (pending.TryDequeue(out var next))
        {
            if (!seen.Add(next))
                continue;
            found.AddRange(Of(next));
            if (next is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                    pending.Enqueue(inner);
            }
            else if (next.InnerException is { } inner)
            {
                pending.Enqueue(inner);
            }
        }
        return found;
    }

    /// <summary>Attaches <paramref name="cleanupFailure"/> to <paramref name="failure"/>.</summary>
    public static void Attach(Exception failure, Exception cleanupFailure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        ArgumentNullException.ThrowIfNull(cleanupFailure);
        if (ReferenceEquals(failure, cleanupFailure))
            return;
        lock (failure.Data)
        {
            if (failure.Data[DataKey] is not List<Exception> list)
                failure.Data[DataKey] = list = [];
            list.Add(cleanupFailure);
        }
    }

    /// <summary>
    /// Moves the clean-up failures attached to <paramref name="from"/> onto <paramref name="to"/>: a failure wrapped
    /// into the typed one the caller gets carries them itself (and they are not reported twice).
    /// </summary>
    internal static TException Move<TException>(Exception from, TException to) where TException : Exception
    {
        if (ReferenceEquals(from, to))
            return to;
        foreach (var cleanup in Of(from))
            Attach(to, cleanup);
        from.Data.Remove(DataKey);
        return to;
    }

    /// <summary>Runs <paramref name="cleanup"/>; if it throws, the exception is attached to <paramref name="failure"/> instead.</summary>
    public static void Run(Exception failure, Action cleanup)
    {
        ArgumentNullException.ThrowIfNull(cleanup);
        try
        {
            cleanup();
        }
        catch (Exception e)
        {
            Attach(failure, e);
        }
    }

    /// <summary>Runs <paramref name="cleanup"/>; if it throws, the exception is attached to <paramref name="failure"/> instead.</summary>
    public static async Task RunAsync(Exception failure, Func<Task> cleanup)
    {
        ArgumentNullException.ThrowIfNull(cleanup);
        try
        {
            await cleanup().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Attach(failure, e);
        }
    }
}
