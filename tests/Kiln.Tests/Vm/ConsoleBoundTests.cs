using Kiln.Tests.Support;
using Kiln.Vm;
using Kiln.Vmm;

namespace Kiln.Tests.Vm;

// A detached VMM writes its console straight into the file: the file is bounded from outside (copytruncate).
public sealed class ConsoleBoundTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void A_full_file_is_copied_to_dot_1_and_truncated_and_older_files_shift()
    {
        using var root = new TempRoot();
        var path = root.Combine("console.log");
        File.WriteAllText(path, new string('a', 5000));
        File.WriteAllText(path + ".1", "older");

        var rotated = CopyTruncateRotation.RotateIfFull(path, new OutputRotation(4096, 3));

        Assert.True(rotated);
        Assert.Equal(0, new FileInfo(path).Length);
        Assert.Equal(new string('a', 5000), File.ReadAllText(path + ".1"));
        Assert.Equal("older", File.ReadAllText(path + ".2"));
    }

    [Fact]
    public void A_file_below_its_bound_or_missing_is_left_alone()
    {
        using var root = new TempRoot();
        var path = root.Combine("console.log");
        File.WriteAllText(path, new string('a', 4095));

        Assert.False(CopyTruncateRotation.RotateIfFull(path, new OutputRotation(4096, 2)));
        Assert.False(CopyTruncateRotation.RotateIfFull(root.Combine("none.log"), new OutputRotation(4096, 2)));
        Assert.Equal(4095, new FileInfo(path).Length);
        Assert.False(File.Exists(path + ".1"));
    }

    [Fact]
    public void With_one_file_a_full_log_starts_over()
    {
        using var root = new TempRoot();
        var path = root.Combine("console.log");
        File.WriteAllText(path, new string('a', 5000));

        Assert.True(CopyTruncateRotation.RotateIfFull(path, new OutputRotation(4096, 1)));
        Assert.Equal(0, new FileInfo(path).Length);
        Assert.False(File.Exists(path + ".1"));
    }

    [Fact]
    public async Task A_detached_vmms_console_is_rotated_when_a_microvm_attaches_to_it_and_appends_continue_at_the_start()
    {
        using var root = new TempRoot();
        var options = MicrovmFixture.Options(root) with
        {
            Ownership = VmmOwnership.Detached,
            ConsoleInputPath = root.Combine("console.in"),
            ConsoleRotation = new OutputRotation(4096, 2),
        };
        var console = root.Combine("console.log");
        var vm = await Microvm.BootAsync(MicrovmFixture.Description(root), options, Ct);
        var identity = vm.Identity;
        try
        {
            // The stand-in's guest echoes serial input onto the console: fill it past its bound.
            for (var i = 0; i < 60; i++)
                await vm.Console.WriteLineAsync($"line {i:D3} {new string('x', 80)}", Ct);
            // The held microVM's 5-second check may rotate the file while this waits.
            await Eventually.RotatedLogContainsAsync(console, "serial input: line 059", TimeSpan.FromSeconds(30));
        }
        finally
        {
            await vm.DisposeAsync();
        }

        await using var attached = Microvm.TryAttach(identity, options, MicrovmState.Running);

        // Rotated at the latest by the attach (the held microVM's periodic check may have come first).
        Assert.NotNull(attached);
        Assert.True(new FileInfo(console).Length < 4096);
        Assert.True(File.Exists(console + ".1"));
        Assert.Contains("serial input: line 059", File.ReadAllText(console + ".1") + File.ReadAllText(console));
        await attached.Console.WriteLineAsync("after the rotation", Ct);
        var now = await Eventually.RotatedLogContainsAsync(console, "serial input: after the rotation", TimeSpan.FromSeconds(30));
        Assert.DoesNotContain('\0', now);
        await attached.StopAsync(ShutdownPlan.Kill(), Ct);
    }
}
