using System.Text.RegularExpressions;
using Kiln.Sandbox;

namespace Kiln.Tests.Support;

/// <summary>
/// Waits for what a guest prints on its serial console. A guest boots on its own schedule (50–120 s on nested or
/// software KVM), so the deadline is the target's boot timeout, the wait ends at once if the VMM exits, and a failure
/// carries what the console showed.
/// </summary>
public static class GuestConsole
{
    /// <summary>Waits until the console, from character <paramref name="from"/> on, matches <paramref name="pattern"/>;
    /// returns the console's length at that moment (where to look from for the next event).</summary>
    public static Task<int> WaitForAsync(FirecrackerHypervisor driver, Regex pattern, TimeSpan within, int from = 0) =>
        WaitForAsync(driver.ConsolePath, () => driver.State is SandboxState.Exited or SandboxState.Stopped, pattern, within, from);

    /// <summary>The same for any console file; <paramref name="ended"/> says when the VMM is gone.</summary>
    public static async Task<int> WaitForAsync(string consolePath, Func<bool> ended, Regex pattern, TimeSpan within, int from = 0)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var console = File.Exists(consolePath) ? await File.ReadAllTextAsync(consolePath, TestContext.Current.CancellationToken) : "";
            if (console.Length > from && pattern.IsMatch(console[from..]))
                return console.Length;
            if (ended())
                Assert.Fail($"The VMM ended before '{pattern}' appeared on the guest console; it showed:\n{Tail(console)}");
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"'{pattern}' did not appear on the guest console within {within} (raise KILN_TEST_BOOT_TIMEOUT for a slow " +
                    $"machine, or set KILN_TEST_READY_PATTERN to the line this guest prints when it is up); it showed:\n{Tail(console)}");
            }

            // The console is a file Firecracker appends to: look again shortly (bounded by the deadline above).
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>How much the console holds now.</summary>
    public static int Length(FirecrackerHypervisor driver) => File.Exists(driver.ConsolePath) ? File.ReadAllText(driver.ConsolePath).Length : 0;

    private static string Tail(string s) => s.Length <= 4000 ? s : s[^4000..];
}
