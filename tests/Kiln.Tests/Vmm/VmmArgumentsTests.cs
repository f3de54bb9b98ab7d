using Kiln.Vmm;

namespace Kiln.Tests.Vmm;

public sealed class VmmArgumentsTests
{
    [Fact]
    public void The_api_socket_and_id_come_first()
    {
        var args = new VmmArguments("/tmp/a.sock").WithId("sb-1") with { BootTimer = true };
        Assert.Equal(["--api-sock", "/tmp/a.sock", "--id", "sb-1", "--boot-timer"], args.ToList());
    }

    [Fact]
    public void With_returns_a_new_value_and_leaves_the_original_alone()
    {
        var a = new VmmArguments("/s");
        var b = a.WithId("x");
        Assert.Null(a.Id);
        Assert.Equal("x", b.Id);
    }

    [Theory]
    [InlineData(0, typeof(VmmProcessState.Exited))]
    [InlineData(1, typeof(VmmProcessState.Exited))]
    [InlineData(137, typeof(VmmProcessState.Crashed))]
    [InlineData(143, typeof(VmmProcessState.Crashed))]
    [InlineData(153, typeof(VmmProcessState.Exited))]
    [InlineData(155, typeof(VmmProcessState.Exited))]
    public void Exit_codes_map_to_exits_or_signals(int code, Type expected) =>
        Assert.IsType(expected, VmmProcessState.FromExitCode(code));
}
