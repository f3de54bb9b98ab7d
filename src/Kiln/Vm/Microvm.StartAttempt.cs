// What a cold boot and a restore share, so that the two ways to make a microVM cannot drift apart: the stale files
// removed first, the spawned VM, the named steps each run as a trace span, and the
// rollback when one fails — kill the VMM, keep the tail of its log and output, remove what the attempt created and
// throw MicrovmBootException naming the step with Firecracker's fault message.
using Kiln.Vmm;
using Microsoft.Extensions.Logging;

namespace Kiln.Vm;

public sealed partial class Microvm
{
    /// <summary>One boot or restore in progress: what it created and the VM it spawned, until it runs or is rolled back.</summary>
    /// <param name="options">The VMM's options: its socket, console, log, ownership and clock.</param>
    /// <param name="logger">Where each spawn and finished step is logged.</param>
    /// <param name="verb">What the failure message says the microVM failed to do (<c>boot</c>, <c>restore</c>).</param>
    /// <param name="spanPrefix">The prefix of each step's span name (the names tracing dashboards know).</param>
    private sealed class StartAttempt(MicrovmOptions options, ILogger logger, string verb, string spanPrefix)
    {
        private readonly string _vmId = options.Id ?? "?";
        private Microvm? _vm;

        /// <summary>Files this attempt made (or took over from a stale run): removed when it fails.</summary>
        public List<string> Created { get; } = [];

        /// <summary>The VM once spawned (set at once, so that a failure right after the spawn still kills it).</summary>
        public Microvm Vm
        {
            get => _vm ?? throw new InvalidOperationException("The VMM has not been spawned yet.");
            set => _vm = value;
        }

        /// <summary>
        /// Runs after a step failed and before the VMM is killed, with the step's name and its failure: a VMM that ends
        /// on its own after some failures is given the chance to log why first.
        /// </summary>
        public Func<Microvm, string, Exception, Task>? BeforeKill { get; init; }

        /// <summary>Removes what a killed run leaves behind and takes over the files this attempt will own.</summary>
        /// <param name="vsockUdsPath">The vsock's host socket, which Firecracker binds, refuses if it exists and never removes.</param>
        /// <param name="freshLog">Whether the log and the metrics FIFO are made here (a jail's are inside its chroot and
        /// made by the jail).</param>
        public Task RemoveStaleFiles(string? vsockUdsPath, bool freshLog)
        {
            // Firecracker refuses an API socket path that exists, and leaves its sockets behind when killed.
            DeleteFile(options.SocketPath);
            if (vsockUdsPath is { } vsock)
            {
                DeleteFile(vsock);
                // Bound by a step (PUT /vsock, the snapshot load), so a failure after it would leave it behind (found by
                // the fault suite: tests/Kiln.Tests/Reliability/StartFaultTests).
                Created.Add(vsock);
            }
            if (!File.Exists(options.ConsolePath))
                Created.Add(options.ConsolePath);
            if (options.LogPath is { } log && freshLog)
            {
                // A fresh file per start (the last one kept as .1), created here so that no Firecracker version's
                // open-without-create or write-from-offset-0 can fail or garble it.
                if (File.Exists(log))
                    File.Move(log, log + ".1", overwrite: true);
                // Shared: File.Create's FileShare.None takes .NET's exclusive advisory lock, which made the start fail
                // while anything (kiln logs -f, a test) was reading the previous log (found by StartFaultTests).
                new FileStream(log, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete).Dispose();
                Created.Add(log);
            }
            if (options.MetricsPath is { } metrics && freshLog && !Path.Exists(metrics))
            {
                Kiln.Interop.FileNodes.CreateFifo(metrics);
                Created.Add(metrics);
            }
            return Task.CompletedTask;
        }

        /// <summary>
        /// A detached VMM's serial input: the FIFO <see cref="MicrovmOptions.ConsoleInputPath"/> (made here, and this
        /// attempt's when it was not there yet); null for an owned VMM or without one.
        /// </summary>
        public string? CreateConsoleInput()
        {
            if (options.Ownership != VmmOwnership.Detached || options.ConsoleInputPath is not { } fifo)
                return null;
            if (!File.Exists(fifo))
                Created.Add(fifo);
            Kiln.Interop.FileNodes.CreateFifo(fifo);
            return fifo;
        }

        /// <summary>A console keeper's files are this attempt's too: a failed start leaves none of them.</summary>
        public void AddConsoleKeeperFiles()
        {
            if (options.Ownership != VmmOwnership.Detached || options.ConsoleKeeper is null)
                return;
            Created.Add(Kiln.Vmm.ConsoleKeeper.FifoPath(options.ConsolePath));
            Created.Add(Kiln.Vmm.ConsoleKeeper.SocketPath(options.ConsolePath));
            Created.Add(Kiln.Vmm.ConsoleKeeper.ReadyPath(options.ConsolePath));
            Created.Add(Kiln.Vmm.ConsoleKeeper.LogPath(options.ConsolePath));
        }

        /// <summary>Tells the caller a VMM is about to be launched.</summary>
        public Task SpawningAsync(CancellationToken ct) => options.Spawning?.Invoke(ct) ?? Task.CompletedTask;

        /// <summary>Logs the spawn of <see cref="Vm"/> and tells the caller it exists.</summary>
        public async Task SpawnedAsync(int pid, CancellationToken ct)
        {
            VmLog.Spawned(logger, _vmId, pid, options.Ownership);
            if (options.Spawned is { } spawned)
                await spawned(Vm, ct).ConfigureAwait(false);
        }

        /// <summary>Runs <paramref name="steps"/> in order; the VM is then in <paramref name="reached"/>.</summary>
        /// <exception cref="MicrovmBootException">A step failed; the VMM was killed and what the attempt created removed.</exception>
        public async Task<Microvm> RunAsync(IEnumerable<BootStep> steps, MicrovmState reached, CancellationToken cancellationToken)
        {
            var time = options.TimeProvider;
            var step = "prepare";
            try
            {
                foreach (var next in steps)
                {
                    step = next.Name;
                    using var stepActivity = KilnTelemetry.ActivitySource.StartActivity(spanPrefix + next.Name);
                    var stepStart = time.GetTimestamp();
                    await next.Run(cancellationToken).ConfigureAwait(false);
                    VmLog.StepDone(logger, _vmId, next.Name, time.GetElapsedTime(stepStart).TotalMilliseconds);
                }
            }
            catch (Exception e)
            {
                var tail = await RollBackAsync(step, e).ConfigureAwait(false);
                var reason = e is OperationCanceledException && cancellationToken.IsCancellationRequested ? "cancelled" : e.Message;
                throw CleanupFailures.Move(e, new MicrovmBootException(step, $"The microVM failed to {verb} at step '{step}': {reason}",
                    MicrovmBootException.FindFault(e), tail, e));
            }
            var vm = Vm;
            vm._state = reached;
            vm.StartReaders();
            vm.StartConsoleBound();
            return vm;
        }

        /// <summary>
        /// Kills the VMM and removes what this attempt created; returns the tail of the VMM's log and output. Each
        /// clean-up step runs even when an earlier one failed; their failures are attached to <paramref name="failure"/>.
        /// </summary>
        private async Task<string> RollBackAsync(string step, Exception failure)
        {
            var tail = "";
            if (_vm is { } vm)
            {
                if (BeforeKill is { } beforeKill)
                    await CleanupFailures.RunAsync(failure, () => beforeKill(vm, step, failure)).ConfigureAwait(false);
                await CleanupFailures.RunAsync(failure, () => vm._vmm.KillAsync(CancellationToken.None)).ConfigureAwait(false);
                tail = FailureTail(vm._vmm.ReadOutputTail(), options.LogPath is null ? "" : VmmProcess.ReadFileTail(options.LogPath, 32));
                vm._state = MicrovmState.Exited;
                if (vm._jail is { } jail)
                    await CleanupFailures.RunAsync(failure, () => jail.CleanupAsync(options.TimeProvider, CancellationToken.None)).ConfigureAwait(false);
                await CleanupFailures.RunAsync(failure, vm.ReleaseAsync).ConfigureAwait(false);
                Interlocked.Exchange(ref vm._disposed, 1);
            }
            // A jailer that failed before there was a VMM: its own words (from the keeper's FIFO or the console file).
            if (_vm is null && failure is JailStartException { OutputTail: { Length: > 0 } jailerTail })
                tail = jailerTail;
            CleanupFailures.Run(failure, () => DeleteFile(options.SocketPath));
            foreach (var file in Created)
                CleanupFailures.Run(failure, () => DeleteFile(file));
            return tail;
        }
    }
}
