namespace Kiln.Tests.Support;

/// <summary>
/// Test-side observation of something another process does on its own schedule (a guest's console line): checked
/// repeatedly up to a deadline, and a failed assertion — never a pass — when the deadline passes.
/// </summary>
public static class Eventually
{
    public static async Task<string> FileContainsAsync(string path, string text, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var content = File.Exists(path) ? await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken) : "";
            if (content.Contains(text, StringComparison.Ordinal))
                return content;
            Assert.True(DateTime.UtcNow < deadline, $"'{text}' did not appear in {path} within {within}; it holds:\n{Tail(content)}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    private static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];
}
