using Kiln.Api;
using Kiln.Tests.Support;
using Kiln.Vmm;

namespace Kiln.Tests.Vmm;

public sealed class SerialConsoleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_rotating_file_keeps_at_most_its_files_and_a_follower_sees_every_line_in_order()
    {
        using var root = new TempRoot();
        var path = root.Combine("console.log");
        var rotation = new OutputRotation(MaxFileBytes: 1024, Files: 3);
        using var console = new SerialConsole(path);
        var lines = new List<string>();
        await using (var writer = new RotatingFileWriter(path, rotation))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var reader = console.ReadLinesAsync(new FollowOptions { PollInterval = TimeSpan.FromMilliseconds(20) }, timeout.Token)
                .GetAsyncEnumerator(timeout.Token);
            for (var batch = 0; batch < 6; batch++)
            {
                // 50 lines (550 bytes) then read them: a reader that keeps up sees every line across each rotation.
                for (var i = batch * 50; i < (batch + 1) * 50; i++)
                    writer.Write(System.Text.Encoding.UTF8.GetBytes($"line {i:D4}\r\n"));
                for (var i = 0; i < 50 && await reader.MoveNextAsync(); i++)
                    lines.Add(reader.Current);
            }
            await reader.DisposeAsync();
        }

        Assert.Equal(Enumerable.Range(0, 300).Select(i => $"line {i:D4}"), lines);
        var files = Directory.GetFiles(root.Path, "console.log*");
        Assert.True(files.Length <= 3, string.Join(", ", files));
        Assert.All(files, f => Assert.True(new FileInfo(f).Length <= 1024));
    }

    [Fact]
    public async Task The_stand_ins_guest_echoes_serial_input_and_answers_each_line()
    {
        using var root = new TempRoot();
        var target = SandboxTarget.Fake(root);
        await using var vmm = await VmmProcess.LaunchAsync(new VmmLaunchOptions
        {
            ExecutablePath = target.FirecrackerPath,
            Arguments = new VmmArguments(root.Combine("api.sock")),
            OutputPath = root.Combine("console.log"),
        }, Ct);
        await using var fc = new FirecrackerClient(root.Combine("api.sock"));
        await Eventually.ApiAnswersAsync(fc, vmm, TimeSpan.FromSeconds(10));
        await fc.PutGuestBootSourceAsync(new BootSource { KernelImagePath = target.KernelPath, BootArgs = "console=ttyS0 reboot=k" }, Ct);
        await fc.StartInstanceAsync(Ct);
        using var console = SerialConsole.Of(vmm);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));

        await console.WriteLineAsync("hello guest", Ct);
        string? answer = null;
        await foreach (var line in console.ReadLinesAsync(cancellationToken: timeout.Token))
        {
            if (line.StartsWith("kiln-fake-guest: serial input:", StringComparison.Ordinal))
            {
                answer = line;
                break;
            }
        }

        Assert.Equal("kiln-fake-guest: serial input: hello guest", answer);
        Assert.Contains("hello guest\r\n", await File.ReadAllTextAsync(root.Combine("console.log"), Ct));
    }

    [Fact]
    public async Task A_console_without_input_says_so()
    {
        using var root = new TempRoot();
        using var console = new SerialConsole(root.Combine("console.log"));

        Assert.False(console.CanWrite);
        await Assert.ThrowsAsync<InvalidOperationException>(() => console.WriteLineAsync("x", Ct).AsTask());
    }

}
