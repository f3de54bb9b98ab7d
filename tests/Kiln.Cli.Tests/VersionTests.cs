namespace Kiln.Cli.Tests;

public sealed class VersionTests : IAsyncLifetime
{
    private readonly KilnSandboxRoot _root = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _root.DisposeAsync();

    [Fact]
    public async Task Version_reports_kiln_and_the_stand_in_as_a_supported_firecracker()
    {
        var result = await _root.RunAsync("version", "--json");

        Assert.Equal(0, result.ExitCode);
        var json = result.Json();
        Assert.Equal(Kiln.KilnInfo.Version, json.GetProperty("kiln").GetString());
        var firecracker = json.GetProperty("firecracker");
        Assert.True(firecracker.GetProperty("found").GetBoolean());
        Assert.Equal(KilnSandboxRoot.Fake, firecracker.GetProperty("path").GetString());
        Assert.Equal("environment", firecracker.GetProperty("source").GetString());
        Assert.Equal("1.16.1", firecracker.GetProperty("version").GetString());
        Assert.True(firecracker.GetProperty("supported").GetBoolean());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, firecracker.GetProperty("error").ValueKind);
    }

    [Fact]
    public async Task Version_without_any_firecracker_still_prints_kiln_and_exits_0()
    {
        _root.Environment["KILN_FIRECRACKER"] = null;
        _root.Environment["PATH"] = _root.Files;

        var human = await _root.RunAsync("version");
        var json = await _root.RunAsync("version", "--json");

        Assert.Equal(0, human.ExitCode);
        Assert.Contains($"kiln {Kiln.KilnInfo.Version}", human.Stdout);
        Assert.Contains("not found", human.Stdout);
        Assert.Equal(0, json.ExitCode);
        Assert.False(json.Json().GetProperty("firecracker").GetProperty("found").GetBoolean());
    }

    [Fact]
    public async Task Piped_prose_is_never_broken_across_lines_however_long_the_path()
    {
        // A checkout under a long directory once made the demo's "…; no real VM boots." wrap onto a second line.
        var deep = Path.Combine(_root.Files, string.Join('/', Enumerable.Repeat("a-rather-long-directory-name", 10)));
        Directory.CreateDirectory(deep);
        var firecracker = Path.Combine(deep, "firecracker");
        File.CreateSymbolicLink(firecracker, KilnSandboxRoot.Fake);

        var result = await _root.RunAsync("version", "--firecracker", firecracker);

        Assert.Equal(0, result.ExitCode);
        var line = Assert.Single(result.Stdout.Split('\n'), l => l.StartsWith("firecracker ", StringComparison.Ordinal));
        Assert.Contains(firecracker, line);
        Assert.EndsWith("supported", line.TrimEnd());
        Assert.DoesNotContain("[green]", line);
    }

    [Fact]
    public async Task Version_says_so_when_firecracker_is_outside_the_supported_range()
    {
        var old = Path.Combine(_root.Files, "old-firecracker");
        File.WriteAllText(old, "#!/bin/sh\necho 'Firecracker v1.4.0'\n");
        File.SetUnixFileMode(old, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);

        var result = await _root.RunAsync("version", "--json", "--firecracker", old);

        Assert.Equal(0, result.ExitCode);
        var firecracker = result.Json().GetProperty("firecracker");
        Assert.Equal("1.4.0", firecracker.GetProperty("version").GetString());
        Assert.False(firecracker.GetProperty("supported").GetBoolean());
        Assert.Equal("option", firecracker.GetProperty("source").GetString());
    }

    [Fact]
    public async Task Version_reports_a_binary_whose_output_is_not_a_version()
    {
        var odd = Path.Combine(_root.Files, "odd-firecracker");
        File.WriteAllText(odd, "#!/bin/sh\necho 'hello'\n");
        File.SetUnixFileMode(odd, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);

        var result = await _root.RunAsync("version", "--json", "--firecracker", odd);

        Assert.Equal(0, result.ExitCode);
        var firecracker = result.Json().GetProperty("firecracker");
        Assert.Equal(System.Text.Json.JsonValueKind.Null, firecracker.GetProperty("version").ValueKind);
        Assert.Contains("hello", firecracker.GetProperty("error").GetString());
    }
}
