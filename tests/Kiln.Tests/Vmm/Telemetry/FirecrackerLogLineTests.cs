using Kiln.Vmm.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Kiln.Tests.Vmm.Telemetry;

public sealed class FirecrackerLogLineTests
{
    [Fact]
    public void Every_line_of_a_real_firecracker_log_parses_with_its_level_thread_and_origin()
    {
        var lines = File.ReadAllLines(MetricsSamples.AssetPath("logger.log")).Where(l => l.Length > 0).ToArray();

        var parsed = lines.Select(l => FirecrackerLogLine.TryParse(l, out var p) ? p : null).ToArray();

        Assert.All(parsed, Assert.NotNull);
        Assert.All(parsed, p => Assert.Equal("sample-1", p!.InstanceId));
        Assert.Contains(parsed, p => p!.Level == LogLevel.Warning && p.Thread == "fc_vcpu 0");
        Assert.Equal(
            new FirecrackerLogLine("2026-11-26T19:21:43.935558903", "sample-1", "fc_api", LogLevel.Information,
                "src/firecracker/src/api_server/parsed_request.rs:192", "The request was executed successfully. Status code: 204 No Content."),
            parsed[0]);
    }

    [Theory]
    [InlineData("2026-11-26T18:16:56.719667523 [sandbox-4:main] Running Firecracker v1.16.1", null, null, "Running Firecracker v1.16.1")]
    [InlineData("2026-11-26T18:16:56.719667523 [sb:fc_api:ERROR] Received Error. Status code: 400", LogLevel.Error, null, "Received Error. Status code: 400")]
    [InlineData("2026-11-26T18:16:56.719667523 [sb:main:src/vmm/src/lib.rs:12] [x] y", null, "src/vmm/src/lib.rs:12", "[x] y")]
    [InlineData("2026-11-26T18:16:56.719667523 [sb:fc_vcpu 1:DEBUG:src/a.rs:3] d", LogLevel.Debug, "src/a.rs:3", "d")]
    [InlineData("2026-11-26T18:16:56.719667523 [sb:main:TRACE] t\r", LogLevel.Trace, null, "t")]
    public void Lines_written_with_and_without_level_and_origin_parse(string line, LogLevel? level, string? origin, string message)
    {
        Assert.True(FirecrackerLogLine.TryParse(line, out var parsed));

        Assert.Equal((level, origin, message), (parsed.Level, parsed.Origin, parsed.Message));
    }

    [Theory]
    [InlineData("")]
    [InlineData("[    0.000000] Linux version 6.1.0 (guest console)")]
    [InlineData("thread 'main' panicked at src/main.rs:1:1:")]
    [InlineData("2026-11-26T18:16:56.719667523 no brackets")]
    [InlineData("2026-11-26T18:16:56.719667523 [only-one-part] x")]
    [InlineData("2026-11-26T18:16:56.719667523 [a:b:NOTALEVEL:file.rs:1] x")]
    public void Text_that_is_not_a_log_line_does_not_parse(string line)
    {
        Assert.False(FirecrackerLogLine.TryParse(line, out _));
    }

    [Fact]
    public void Forwarded_lines_keep_their_level_and_other_text_is_logged_as_it_is()
    {
        var logger = new FakeLogger();

        FirecrackerLogForwarder.Forward(logger, "vm", "2026-11-26T19:21:44.500848258 [s:fc_vcpu 0:WARN:src/vmm/src/arch/x86_64/vcpu.rs:283] KVM_KVMCLOCK_CTRL call failed");
        FirecrackerLogForwarder.Forward(logger, "vm", "2026-11-26T19:21:44.500848258 [s:main] Firecracker exiting successfully. exit_code=0");
        FirecrackerLogForwarder.Forward(logger, "vm", "thread 'fc_api' panicked");

        var records = logger.Collector.GetSnapshot();
        Assert.Equal([LogLevel.Warning, LogLevel.Information, LogLevel.Information], records.Select(r => r.Level));
        Assert.Equal("firecracker vm [fc_vcpu 0] KVM_KVMCLOCK_CTRL call failed (src/vmm/src/arch/x86_64/vcpu.rs:283)", records[0].Message);
        Assert.Equal("firecracker vm: thread 'fc_api' panicked", records[2].Message);
    }
}
