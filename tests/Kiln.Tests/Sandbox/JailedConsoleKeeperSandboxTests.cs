// A detached jailed sandbox's console keeper through the Kata-style driver, on fake-jailer + the stand-in and, when
// KILN_JAILER/KILN_FIRECRACKER and a guest are configured, on the real pair: the guest's boot output reaches the console
// log through the keeper, a SIGKILLed keeper is started again by another driver (RestartConsoleKeeperAsync) and the new
// one is recorded in state.json, and the stop ends it. Plain (unjailed) sandboxes run the same restart.
using Kiln.Sandbox;
using Kiln.Tests.Support;
using Kiln.Tests.Vm;
using Kiln.Vmm;

namespace Kiln.Tests.Sandbox;

public sealed class JailedConsoleKeeperSandboxTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Cases => ["plain", "jailed-fake", "jailed-real"];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_sigkilled_keeper_is_started_again_by_another_driver_recorded_and_ended_by_the_stop(string kind)
    {
        using var root = new TempRoot();
        JailTestScope? scope = null;
        HypervisorConfig config;
        SandboxTarget target;
        if (kind == "plain")
        {
            target = SandboxTarget.Fake(root);
            config = target.Config(root);
        }
        else
        {
            JailTestScope.RequireRoot();
            scope = new JailTestScope(kind == "jailed-real" ? "real" : "fake");
            // The real pair boots the configured guest (skipped with the reason without one), its files bind-mounted.
            target = scope.IsReal ? SandboxTarget.Real() : SandboxTarget.Fake(root);
            config = (scope.IsReal ? target.Config(root) : target.Config(root) with
            {
                KernelPath = scope.File("vmlinux"),
                ImagePath = scope.File("rootfs.ext4"),
            }) with
            {
                RootDirectory = Path.Combine(scope.Base, "sb"),
                BlockPoolSize = 0,
                Jail = scope.IsReal ? scope.Settings(withLimits: false) with { FileExposure = Kiln.Host.JailFileExposure.BindMount } : scope.Settings(withLimits: false),
            };
        }
        await using var _scope = scope;
        var id = scope?.Id ?? "keeper";
        var options = new FirecrackerHypervisorOptions { Ownership = VmmOwnership.Detached, ConsoleKeeper = JailedConsoleKeeperTests.Keeper };
        await using var driver = new FirecrackerHypervisor(options);
        await driver.CreateAsync(id, config, Ct);
        await driver.StartAsync(Ct);
        try
        {
            var console = driver.ConsolePath;
            var first = (await SandboxCatalog.GetAsync(config.RootDirectory, id, Ct)).ConsoleKeeperPid;
            Assert.NotNull(first);
            await UntilAsync(() => target.ReadyPattern.IsMatch(JailedConsoleKeeperTests.BothLogs(console)), "the guest's ready line never reached the console log",
                target.BootTimeout);

            using (var pidFd = Kiln.Interop.PidFd.TryOpen(first.Value)!)
            {
                pidFd.TrySignal(Kiln.Interop.LibC.SIGKILL);
                await pidFd.WaitForExitAsync(Ct);
            }
            var afterKill = await SandboxCatalog.GetAsync(config.RootDirectory, id, Ct);
            Assert.Null(afterKill.ConsoleKeeperPid);
            Assert.True(afterKill.ConsoleKeeperDied);

            bool restarted;
            await using (var other = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, id, options, Ct))
                restarted = await other.RestartConsoleKeeperAsync(Ct);

            Assert.True(restarted);
            var afterRestart = await SandboxCatalog.GetAsync(config.RootDirectory, id, Ct);
            var second = afterRestart.ConsoleKeeperPid;
            Assert.NotNull(second);
            Assert.False(afterRestart.ConsoleKeeperDied);
            Assert.NotEqual(first, second);
            if (!target.IsReal)
            {
                // The stand-in's guest answers serial input: the new keeper writes it.
                await JailedConsoleKeeperTests.TypeAsync(Path.Combine(driver.SandboxDirectory, "console.in"), ["after the restart"]);
                await UntilAsync(() => JailedConsoleKeeperTests.BothLogs(console).Contains("serial input: after the restart", StringComparison.Ordinal),
                    "the restarted keeper wrote nothing", TimeSpan.FromSeconds(60));
            }
            await using (var third = await FirecrackerHypervisor.OpenAsync(config.RootDirectory, id, options, Ct))
                Assert.False(await third.RestartConsoleKeeperAsync(Ct)); // it runs now

            await driver.StopAsync(Ct);
            Assert.False(Directory.Exists($"/proc/{second}") && !File.ReadAllText($"/proc/{second}/stat").Contains(") Z ", StringComparison.Ordinal),
                "the restarted keeper outlived the stop");
        }
        finally
        {
            await driver.StopAsync(Ct);
            await driver.CleanupAsync(Ct);
        }
    }

    private static async Task UntilAsync(Func<bool> condition, string what, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(20, Ct);
        }
    }
}
