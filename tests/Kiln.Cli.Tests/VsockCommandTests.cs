// `kiln vsock` against the stand-in's guest, whose echo service listens on vsock port 5000.
namespace Kiln.Cli.Tests;

public sealed class VsockCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Fact]
    public async Task Vsock_pipes_stdin_to_the_guest_port_and_its_answer_to_stdout()
    {
        await _root.RunDetachedAsync("vs", "--vsock", "3");
        await using var child = _root.Start("vsock", "vs", "5000");

        await child.WriteStdinAndCloseAsync("hello through vsock\n");
        var result = await child.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("hello through vsock\n", result.Stdout);
    }

    [Fact]
    public async Task Vsock_to_a_sandbox_without_a_vsock_device_fails_with_exit_1()
    {
        await _root.RunDetachedAsync("novs");

        var result = await _root.RunAsync("vsock", "novs", "5000");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no vsock device", result.Stderr);
    }

    [Fact]
    public async Task Vsock_to_a_port_nobody_serves_fails_with_exit_1_when_the_timeout_passes()
    {
        await _root.RunDetachedAsync("refused", "--vsock", "3");

        var result = await _root.RunAsync("vsock", "refused", "5999", "--timeout", "2");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("vsock connect to guest port 5999", result.Stderr);
        // Refused on every attempt that finished; on a loaded machine the deadline may cut the last one short.
        Assert.Matches("(Refused|NoAcknowledgement)", result.Stderr);
    }
}
