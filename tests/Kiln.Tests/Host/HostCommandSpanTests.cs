using System.Collections.Concurrent;
using System.Diagnostics;
using Kiln.Host.Network;
using Kiln.Tests.Support;

namespace Kiln.Tests.Host;

/// <summary>
/// Every host command a sandbox network runs is a <c>kiln.host.command</c> span whose tags (set before it starts) say
/// the command line and the namespace it runs in; a failed command marks its span Error.
/// </summary>
public sealed class HostCommandSpanTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The spans started while it listens, in start order (other tests' spans included: callers filter).</summary>
    private sealed class Spans : IDisposable
    {
        private readonly ActivityListener _listener;

        public Spans()
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == "Kiln",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStarted = activity =>
                {
                    if (activity.OperationName == HostCommand.SpanName)
                        Started.Enqueue((activity, (string?)activity.GetTagItem("kiln.host.command.line"), (string?)activity.GetTagItem("kiln.host.command.netns")));
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public ConcurrentQueue<(Activity Span, string? Line, string? Netns)> Started { get; } = new();

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task An_isolated_network_set_up_is_one_span_per_command_with_its_line_and_namespace()
    {
        using var world = new NetworkWorld();
        using var spans = new Spans();

        await world.Networks.SetUpAsync("spans", new SandboxNetworkSpec { Mode = NetworkMode.Isolated }, Ct);
        await world.Networks.TearDownAsync("spans", Ct);

        var sandbox = world.NamespacePath("spans");
        var ours = spans.Started.Where(s => s.Netns == world.Host.Path || s.Netns == sandbox).ToList();
        Assert.Equal(("ip netns add " + world.Prefix + "spans", world.Host.Path), (ours[0].Line, ours[0].Netns));
        Assert.Equal(("ip link set dev lo up", sandbox), (ours[1].Line, ours[1].Netns));
        Assert.Contains(ours, s => s.Line == "ip tuntap add dev tap0 mode tap" && s.Netns == sandbox);
        Assert.Equal(("ip netns del " + world.Prefix + "spans", world.Host.Path), (ours[^1].Line, ours[^1].Netns));
        Assert.All(ours, s => Assert.Equal(ActivityStatusCode.Unset, s.Span.Status));
    }

    [Fact]
    public async Task A_command_that_fails_marks_its_span_error_with_the_reason()
    {
        using var spans = new Spans();
        var device = "kiln-no-" + Guid.NewGuid().ToString("N")[..6];

        var ex = await Assert.ThrowsAsync<HostCommandException>(() => HostCommand.RunAsync("ip", ["link", "show", "dev", device], null, Ct));

        var span = Assert.Single(spans.Started, s => s.Line == "ip link show dev " + device);
        Assert.Null(span.Netns);
        Assert.Equal(ActivityStatusCode.Error, span.Span.Status);
        Assert.Equal(ex.Message, span.Span.StatusDescription);
    }
}
