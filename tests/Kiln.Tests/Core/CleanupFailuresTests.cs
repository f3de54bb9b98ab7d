namespace Kiln.Tests.Core;

public sealed class CleanupFailuresTests
{
    [Fact]
    public void A_failing_clean_up_is_attached_to_the_failure_and_the_failure_keeps_its_type()
    {
        var failure = new IOException("the step failed");

        CleanupFailures.Run(failure, () => throw new UnauthorizedAccessException("rm failed"));
        CleanupFailures.Run(failure, () => { });

        var attached = Assert.Single(CleanupFailures.Of(failure));
        Assert.Equal("rm failed", Assert.IsType<UnauthorizedAccessException>(attached).Message);
    }

    [Fact]
    public async Task Clean_up_failures_of_inner_exceptions_are_found_from_the_outer_one()
    {
        var inner = new InvalidOperationException("inner");
        await CleanupFailures.RunAsync(inner, () => Task.FromException(new IOException("teardown failed")));
        var outer = new Exception("outer", inner);

        Assert.Empty(CleanupFailures.Of(outer));
        Assert.Equal(["teardown failed"], CleanupFailures.All(outer).Select(e => e.Message));
    }

    [Fact]
    public void A_failure_without_clean_up_failures_has_none()
    {
        Assert.Empty(CleanupFailures.Of(new IOException("x")));
        Assert.Empty(CleanupFailures.All(new AggregateException(new IOException("x"))));
    }
}
