using Kiln.Api;
using Kiln.Vmm;

namespace Kiln.Tests.Support;

/// <summary>
/// Test-side observation of something another process does on its own schedule (a guest's console line): checked
/// repeatedly up to a deadline, and a failed assertion — never a pass — when the deadline passes.
/// </summary>
public static class Eventually
{
    public static Task<string> FileContainsAsync(string path, string text, TimeSpan within) =>
        ContainsAsync(() => ReadIfThere(path), text, path, within);

    /// <summary>
    /// Like <see cref="FileContainsAsync"/> for a rotating log: looks in PATH.1 and PATH together, since a rotation
    /// (byte-exact, or a copytruncate on a timer) may move the text, or half of it, into PATH.1 before it is seen.
    /// </summary>
    public static Task<string> RotatedLogContainsAsync(string path, string text, TimeSpan within) =>
        ContainsAsync(() => ReadIfThere(path + ".1") + ReadIfThere(path), text, path + "(.1)", within);

    private static async Task<string> ContainsAsync(Func<string> read, string text, string where, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var content = read();
            if (content.Contains(text, StringComparison.Ordinal))
                return content;
            Assert.True(DateTime.UtcNow < deadline, $"'{text}' did not appear in {where} within {within}; it holds:\n{Tail(content)}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    private static string ReadIfThere(string path)
    {
        try
        {
            using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return ""; // not written yet
        }
    }

    /// <summary>
    /// Until <paramref name="client"/>'s VMM answers GET /, racing <paramref name="vmm"/>'s exit: a failed assertion
    /// with its output when it exits first or the deadline passes.
    /// </summary>
    public static async Task<InstanceInfo> ApiAnswersAsync(FirecrackerClient client, VmmProcess vmm, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            try
            {
                return await client.DescribeInstanceAsync(TestContext.Current.CancellationToken);
            }
            catch (FirecrackerConnectionException e)
            {
                Assert.False(vmm.HasExited, "the VMM exited before its API answered: " + vmm.ReadOutputTail());
                Assert.True(DateTime.UtcNow < deadline, $"the VMM's API did not answer within {within}: {e.Message}");
                await Task.Delay(5, TestContext.Current.CancellationToken);
            }
        }
    }

    /// <summary>Until <paramref name="condition"/> holds: a failed assertion naming <paramref name="what"/> when the deadline passes.</summary>
    public static async Task TrueAsync(Func<bool> condition, TimeSpan within, string what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {within}: {what}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    private static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];
}
