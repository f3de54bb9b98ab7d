// Names of the methods the JIT compiles while it listens (KILN_DENSITY_JIT=1): what a density round still compiles
// after its warm-up, i.e. code made per VM rather than once per process.
using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Kiln.Benchmarks;

/// <summary>Counts MethodLoadVerbose events of the runtime by method name.</summary>
internal sealed class JitNames : EventListener
{
    private const EventKeywords JitKeyword = (EventKeywords)0x10;

    public ConcurrentDictionary<string, int> Counts { get; } = new();

    public volatile bool Listening;

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(eventSource, EventLevel.Verbose, JitKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!Listening || e.EventName is not ("MethodLoadVerbose_V1" or "MethodLoadVerbose_V2" or "MethodLoadVerbose") || e.Payload is null)
            return;
        var ns = e.Payload[e.PayloadNames!.IndexOf("MethodNamespace")] as string;
        var name = e.Payload[e.PayloadNames!.IndexOf("MethodName")] as string;
        Counts.AddOrUpdate($"{ns}::{name}", 1, (_, n) => n + 1);
    }
}
