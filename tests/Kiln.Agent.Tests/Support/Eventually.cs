namespace Kiln.Agent.Tests.Support;

/// <summary>Observations of what another process does on its own schedule: checked until a deadline, then a failure.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, TimeSpan within, string failure)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan within, string failure)
    {
        var deadline = DateTime.UtcNow + within;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    public static async Task<string> FileTextAsync(string path, TimeSpan within)
    {
        await TrueAsync(() => File.Exists(path), within, $"{path} never appeared");
        return (await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken)).Trim();
    }
}
