using System.Diagnostics;
using Kiln.FakeFirecracker.Tests.Infrastructure;

namespace Kiln.FakeFirecracker.Tests;

/// <summary>The FAKE_FC_* failure knobs (src/Kiln.FakeFirecracker/README.md).</summary>
public sealed class KnobTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    private static Dictionary<string, string> Env(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => "FAKE_FC_" + p.Key, p => p.Value);

    [Fact]
    public async Task API_DELAY_MS_delays_the_socket()
    {
        using var dir = new TempDir();
        var sw = Stopwatch.StartNew();
        await using var fc = await Fc.StartAsync(dir, env: Env(("API_DELAY_MS", "700")));

        Assert.True(sw.ElapsedMilliseconds >= 700);
    }

    [Fact]
    public async Task NO_API_SOCKET_never_opens_the_socket()
    {
        using var dir = new TempDir();
        await using var p = FakeProcess.Start(["--id", "quiet"], dir["api.sock"], Env(("NO_API_SOCKET", "1")));

        Assert.True(await p.WaitForOutputAsync("Running Firecracker", Long, Fc.Ct));
        Assert.False(await p.WaitForApiAsync(TimeSpan.FromMilliseconds(500), Fc.Ct));
        Assert.False(p.HasExited);
    }

    [Fact]
    public async Task EXIT_AT_before_socket_exits_with_EXIT_CODE()
    {
        using var dir = new TempDir();
        await using var p = FakeProcess.Start([], dir["api.sock"], Env(("EXIT_AT", "before-socket"), ("EXIT_CODE", "7")));

        Assert.Equal(7, await p.WaitExitAsync(Long, Fc.Ct));
        Assert.False(File.Exists(dir["api.sock"]));
    }

    [Fact]
    public async Task EXIT_AT_a_named_request_exits_without_answering()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: Env(("EXIT_AT", "PUT /machine-config"), ("EXIT_CODE", "2")));

        await Assert.ThrowsAsync<IOException>(() => fc.Put("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}"""));
        Assert.Equal(2, await fc.Process.WaitExitAsync(Long, Fc.Ct));
    }

    [Fact]
    public async Task EXIT_AT_instance_start_exits_during_InstanceStart()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: Env(("EXIT_AT", "instance-start")));

        await Assert.ThrowsAsync<IOException>(() => fc.BootAsync());
        Assert.Equal(1, await fc.Process.WaitExitAsync(Long, Fc.Ct));
    }

    [Fact]
    public async Task IGNORE_SIGTERM_survives_SIGTERM()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: Env(("IGNORE_SIGTERM", "1")));

        fc.Process.Signal(NativeMethods.SIGTERM);

        Assert.Null(await fc.Process.WaitExitAsync(TimeSpan.FromMilliseconds(500), Fc.Ct));
        Assert.Equal("Not started", await fc.StateAsync());
    }

    [Fact]
    public async Task HANG_leaves_the_named_request_and_every_later_one_unanswered()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: Env(("HANG", "PUT /actions")));

        var hung = fc.Put("/actions", """{"action_type": "InstanceStart"}""");
        using var other = await ApiClient.ConnectAsync(fc.Process.ApiSocket!, Fc.Ct);
        var later = other.SendAsync("GET", "/", null, Fc.Ct);

        Assert.NotSame(hung, await Task.WhenAny(hung, later, Task.Delay(500, Fc.Ct)));
        Assert.False(hung.IsCompleted || later.IsCompleted);
    }

    [Fact]
    public async Task FAIL_answers_the_named_request_with_the_chosen_status_and_message()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: Env(("FAIL", "PUT /machine-config=500:boom: it broke;GET /version=404:gone")));

        var put = await fc.Put("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}""");
        var version = await fc.Get("/version");

        Assert.Equal(500, put.Status);
        Assert.Equal("boom: it broke", Fc.Fault(put));
        Assert.Equal(404, version.Status);
        Assert.Equal(200, (await fc.Get("/")).Status);
    }

    [Fact]
    public async Task A_knob_naming_the_nth_request_leaves_the_ones_before_it_alone()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: Env(("FAIL", "GET /version#2=500:second only")));

        Assert.Equal(200, (await fc.Get("/version")).Status);
        var second = await fc.Get("/version");
        Assert.Equal(500, second.Status);
        Assert.Equal("second only", Fc.Fault(second));
        Assert.Equal(200, (await fc.Get("/version")).Status);
    }

    [Fact]
    public async Task SLOW_ANSWER_carries_the_request_out_at_once_and_answers_it_late()
    {
        using var dir = new TempDir();
        await using var fc = await Fc.StartAsync(dir, env: Env(("SLOW_ANSWER", "PATCH /vm=5000")));
        await fc.BootAsync();
        var sw = Stopwatch.StartNew();

        var pause = fc.Patch("/vm", """{"state": "Paused"}""");

        // Executed (logged as done) while its answer is still held back.
        Assert.True(await fc.Process.WaitForOutputAsync("'pause vm' API request took", Long, Fc.Ct));
        Assert.False(pause.IsCompleted, $"answered after {sw.ElapsedMilliseconds} ms");
        Assert.Equal(204, (await pause).Status);
        Assert.True(sw.ElapsedMilliseconds >= 5000, $"answered after {sw.ElapsedMilliseconds} ms");
        Assert.Equal("Paused", await fc.StateAsync());
    }
}
