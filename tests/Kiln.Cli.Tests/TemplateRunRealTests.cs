// The template round trip through kiln processes with a guest: on the stand-in always, and on real Firecracker with
// the VM tier's guest (KILN_FIRECRACKER, /dev/kvm, KILN_TEST_KERNEL, KILN_TEST_ROOTFS and/or KILN_TEST_INITRD),
// reported skipped with the reason otherwise. Boot once, make a template, start clones; each answers on its own
// vsock socket; stopping one leaves the others running.
using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

public sealed class TemplateRunRealTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    public static TheoryData<string> Targets => ["stand-in", "real"];

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task Boot_once_make_a_template_and_start_clones_that_each_answer_on_their_own_vsock_and_stop_alone(string target)
    {
        List<string> run = ["run", "--detach", "--name", "src", "--vsock", "3"];
        Regex ready;
        TimeSpan bootTimeout;
        int? echoPort;
        if (target == "stand-in")
        {
            run.AddRange(["--kernel", _root.Kernel, "--rootfs", _root.Rootfs]);
            (ready, bootTimeout, echoPort) = (new Regex(RealFirecracker.DefaultReadyPattern), TimeSpan.FromSeconds(60), RealFirecracker.DefaultVsockEchoPort);
        }
        else
        {
            var guest = RealFirecracker.RequireGuest();
            _root.Environment["KILN_FIRECRACKER"] = guest.Firecracker;
            run.AddRange(["--kernel", guest.Kernel, "--memory", "256"]);
            if (guest.Initrd is not null)
                run.AddRange(["--initrd", guest.Initrd]);
            if (guest.Rootfs is not null)
                run.AddRange(["--rootfs", guest.Rootfs]);
            if (guest.KernelArgs.Length > 0)
                run.AddRange(["--kernel-args", guest.KernelArgs]);
            (ready, bootTimeout, echoPort) = (guest.ReadyPattern, guest.BootTimeout, guest.VsockEchoPort);
        }
        var source = await _root.RunAsync([.. run]);
        Assert.True(source.ExitCode == 0, source.ToString());
        await using (var console = _root.Start("logs", "src", "--follow"))
            await console.WaitForOutputAsync(ready, bootTimeout);
        var template = await _root.RunAsync("template", "create", "base", "--from", "src");
        Assert.True(template.ExitCode == 0, template.ToString());

        var clones = await _root.RunAsync("run", "--template", "base", "--count", "3", "--name", "c");

        Assert.True(clones.ExitCode == 0, clones.ToString());
        Assert.Equal("c-1\nc-2\nc-3\n", clones.Stdout);
        foreach (var name in new[] { "c-1", "c-2", "c-3" })
        {
            Assert.Equal("Running", (await _root.PsAsync(name)).GetProperty("state").GetString());
            if (echoPort is { } port)
                Assert.Equal($"hello {name}", await EchoAsync(name, port, $"hello {name}"));
        }
        var stop = await _root.RunAsync("stop", "c-2");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal("Stopped", (await _root.PsAsync("c-2")).GetProperty("state").GetString());
        foreach (var name in new[] { "src", "c-1", "c-3" })
            Assert.Equal("Running", (await _root.PsAsync(name)).GetProperty("state").GetString());
        if (echoPort is { } echo)
            Assert.Equal("still here", await EchoAsync("c-3", echo, "still here"));

        Assert.True((await _root.RunAsync("template", "rm", "base")).ExitCode == 0);
        foreach (var name in new[] { "src", "c-1", "c-2", "c-3" })
            Assert.True((await _root.RunAsync("rm", "--force", name)).ExitCode == 0);
        Assert.Empty(KilnSandboxRoot.ProcessesMentioning(_root.Root));
    }

    private async Task<string> EchoAsync(string name, int port, string text)
    {
        await using var child = _root.Start("vsock", name, port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await child.WriteStdinAndCloseAsync(text + "\n");
        var result = await child.WaitAsync(KilnSandboxRoot.CommandTimeout, TestContext.Current.CancellationToken);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Stdout.TrimEnd('\n');
    }
}
