using System.Security.Cryptography;
using Kiln.Agent.Tests.Support;

namespace Kiln.Agent.Tests;

public sealed class FileTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_large_file_streams_there_and_back_with_the_same_checksum()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        var source = dir["source.bin"];
        await using (var file = File.Create(source))
        {
            var chunk = new byte[1 << 20];
            for (var i = 0; i < 96; i++)
            {
                RandomNumberGenerator.Fill(chunk);
                await file.WriteAsync(chunk, Ct);
            }

            await file.WriteAsync(chunk.AsMemory(0, 12345), Ct);
        }

        await using (var input = File.OpenRead(source))
            await agent.Client.Files.WriteAsync(dir["guest.bin"], input, Ct);
        var back = dir["back.bin"];
        AgentFileInfo info;
        await using (var output = File.Create(back))
            info = await agent.Client.Files.ReadAsync(dir["guest.bin"], output, Ct);

        Assert.Equal(new FileInfo(source).Length, info.Size);
        Assert.Equal(await Sha256(source), await Sha256(dir["guest.bin"]));
        Assert.Equal(await Sha256(source), await Sha256(back));
    }

    private static async Task<byte[]> Sha256(string path)
    {
        await using var file = File.OpenRead(path);
        return await SHA256.HashDataAsync(file, Ct);
    }

    [Fact]
    public async Task A_written_file_gets_the_requested_mode_and_replaces_the_old_one()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        await File.WriteAllTextAsync(dir["x.sh"], "old contents that are longer", Ct);

        await agent.Client.Files.WriteAsync(dir["x.sh"], "#!/bin/sh\necho hi\n"u8.ToArray(), Ct, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var stat = await agent.Client.Files.StatAsync(dir["x.sh"], Ct);
        var run = await agent.Client.ExecAsync([dir["x.sh"]], Ct);

        Assert.Equal((AgentFileKind.File, 18L), (stat.Kind, stat.Size));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, stat.Mode);
        Assert.Equal("hi\n", run.Stdout);
        Assert.Single(Directory.GetFiles(dir.Path, "*x.sh*"));
    }

    [Fact]
    public async Task Listing_a_directory_describes_each_entry()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        Directory.CreateDirectory(dir["sub"]);
        await File.WriteAllBytesAsync(dir["a.txt"], new byte[7], Ct);
        File.CreateSymbolicLink(dir["link"], dir["a.txt"]);

        var entries = await agent.Client.Files.ListAsync(dir.Path, Ct);

        var byName = entries.ToDictionary(e => Path.GetFileName(e.Path));
        Assert.Equal(AgentFileKind.Directory, byName["sub"].Kind);
        Assert.Equal((AgentFileKind.File, 7L), (byName["a.txt"].Kind, byName["a.txt"].Size));
        Assert.Equal(AgentFileKind.Symlink, byName["link"].Kind);
    }

    [Fact]
    public async Task Remove_deletes_files_and_directories_only_recursively_when_not_empty()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);
        Directory.CreateDirectory(dir["d"]);
        await File.WriteAllTextAsync(dir["d/f"], "x", Ct);

        var refused = await Assert.ThrowsAsync<AgentOperationException>(() => agent.Client.Files.RemoveAsync(dir["d"], Ct));
        await agent.Client.Files.RemoveAsync(dir["d/f"], Ct);
        Assert.True(Directory.Exists(dir["d"]));
        await File.WriteAllTextAsync(dir["d/g"], "x", Ct);
        await agent.Client.Files.RemoveAsync(dir["d"], Ct, recursive: true);

        Assert.Equal("io", refused.ErrorCode);
        Assert.False(Directory.Exists(dir["d"]));
    }

    [Fact]
    public async Task Missing_paths_are_reported_as_not_found()
    {
        using var dir = new TempDir();
        await using var agent = await AgentProcess.StartAsync(dir);

        var read = await Assert.ThrowsAsync<AgentOperationException>(() => agent.Client.Files.ReadAllBytesAsync(dir["nope"], Ct));
        var stat = await Assert.ThrowsAsync<AgentOperationException>(() => agent.Client.Files.StatAsync(dir["nope"], Ct));
        var write = await Assert.ThrowsAsync<AgentOperationException>(() => agent.Client.Files.WriteAsync(dir["no/dir/f"], new byte[3], Ct));

        Assert.Equal(["not-found", "not-found", "not-found"], new[] { read.ErrorCode, stat.ErrorCode, write.ErrorCode });
    }

    [Fact]
    public async Task Relative_paths_are_refused_before_anything_is_sent()
    {
        var client = new AgentClient(_ => throw new InvalidOperationException("must not connect"));

        await Assert.ThrowsAsync<ArgumentException>(() => client.Files.StatAsync("relative/path", Ct));
    }
}
