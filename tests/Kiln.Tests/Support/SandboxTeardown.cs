using Kiln.Sandbox;

namespace Kiln.Tests.Support;

/// <summary>A test's sandboxes taken down whatever the test did: each stopped, cleaned up and disposed, in order.</summary>
public static class SandboxTeardown
{
    /// <summary>Stops, cleans up and disposes every driver (not cancellable: it runs in a test's <c>finally</c>).</summary>
    public static async Task StopAllAsync(IEnumerable<FirecrackerHypervisor> drivers)
    {
        foreach (var driver in drivers)
        {
            await driver.StopAsync(CancellationToken.None);
            await driver.CleanupAsync(CancellationToken.None);
            await driver.DisposeAsync();
        }
    }
}
