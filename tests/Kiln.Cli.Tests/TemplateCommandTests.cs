// kiln template create / ls / rm through separate kiln processes against fake-firecracker.
namespace Kiln.Cli.Tests;

public sealed class TemplateCommandTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Fact]
    public async Task A_template_made_from_a_running_sandbox_is_listed_and_removed_and_the_sandbox_keeps_running()
    {
        await _root.RunDetachedAsync("src");

        var create = await _root.RunAsync("template", "create", "base", "--from", "src", "--json");

        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.Equal("base", create.Json().GetProperty("name").GetString());
        Assert.Equal("1.16.1", create.Json().GetProperty("firecrackerVersion").GetString());
        Assert.Equal("Running", (await _root.PsAsync("src")).GetProperty("state").GetString());
        var ls = await _root.RunAsync("template", "ls", "--json");
        Assert.True(ls.ExitCode == 0, ls.ToString());
        Assert.Equal(["base"], ls.Json().EnumerateArray().Select(t => t.GetProperty("name").GetString()));

        var rm = await _root.RunAsync("template", "rm", "base");

        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Equal(0, (await _root.RunAsync("template", "ls", "--json")).Json().GetArrayLength());
    }

    [Fact]
    public async Task Template_commands_fail_with_1_for_what_is_not_there_and_2_for_a_bad_name()
    {
        var rm = await _root.RunAsync("template", "rm", "nothing");
        var noSource = await _root.RunAsync("template", "create", "t1", "--from", "absent");
        var badName = await _root.RunAsync("template", "rm", "../up");

        Assert.True(rm.ExitCode == 1, rm.ToString());
        Assert.Contains("no template 'nothing'", rm.Stderr);
        Assert.True(noSource.ExitCode == 1, noSource.ToString());
        Assert.True(badName.ExitCode == 2, badName.ToString());
    }
}
