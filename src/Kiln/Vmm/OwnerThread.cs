// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process. .NET forks on the thread
// that calls Process.Start, usually a thread-pool thread the pool may retire at any time — which would SIGKILL a
// healthy VMM. So owned VMMs are forked from this one thread, which lives as long as the process.
using System.Collections.Concurrent;

namespace Kiln.Vmm;

/// <summary>A dedicated, never-ending thread that runs process launches.</summary>
internal static class OwnerThread
{
    private static readonly BlockingCollection<Action> Work = [];
    private static readonly Thread Thread = StartThread();

    private static Thread StartThread()
    {
        var thread = new Thread(static () =>
        {
            foreach (var item in Work.GetConsumingEnumerable())
                item();
        })
        {
            IsBackground = true,
            Name = "kiln-vmm-owner",
        };
        thread.Start();
        return thread;
    }

    /// <summary>The owner thread's managed id (tests check launches really run there).</summary>
    public static int ManagedThreadId => Thread.ManagedThreadId;

    /// <summary>Runs <paramref name="func"/> on the owner thread.</summary>
    public static Task<T> RunAsync<T>(Func<T> func)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Work.Add(() =>
        {
            try
            {
                tcs.SetResult(func());
            }
            catch (Exception e)
            {
                tcs.SetException(e);
            }
        });
        return tcs.Task;
    }
}
