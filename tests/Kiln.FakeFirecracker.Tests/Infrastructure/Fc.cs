// A started firecracker (the stand-in unless a target says otherwise) with its API client, for tests that drive it
// call by call.
using System.Text.Json.Nodes;

namespace Kiln.FakeFirecracker.Tests.Infrastructure;

public sealed class Fc : IAsyncDisposable
{
    private ApiClient? _client;

    private Fc(TempDir dir, FakeProcess process)
    {
        Dir = dir;
        Process = process;
    }

    public TempDir Dir { get; }

    public FakeProcess Process { get; }

    public string Kernel => Dir["vmlinux.bin"];

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// A TAP name no other test (nor another test run on this host) uses: the stand-in opens TAPs for real, in the
    /// host's network namespace, and a name another process holds is busy.
    /// </summary>
    public static string UniqueTap() => "kt" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(5));

    /// <summary>Starts the target (the stand-in by default) on <c>DIR/api.sock</c> and waits until GET / answers.</summary>
    public static async Task<Fc> StartAsync(TempDir dir, IEnumerable<string>? args = null, IReadOnlyDictionary<string, string>? env = null, string socket = "api.sock", FirecrackerTarget? target = null)
    {
        if (!File.Exists(dir["vmlinux.bin"]))
        {
            dir.File("vmlinux.bin", 1024 * 1024);
        }

        var process = FakeProcess.Start(args ?? ["--id", "test-vm"], dir[socket], env, target?.BinaryPath);
        var fc = new Fc(dir, process);
        if (!await process.WaitForApiAsync(TimeSpan.FromSeconds(20), Ct))
        {
            var output = process.Output;
            await fc.DisposeAsync();
            throw new InvalidOperationException($"{target ?? FirecrackerTarget.StandIn}'s API never answered:\n" + output);
        }

        return fc;
    }

    public async Task<ApiAnswer> SendAsync(string method, string path, string? body = null)
    {
        _client ??= await ApiClient.ConnectAsync(Process.ApiSocket!, Ct);
        try
        {
            return await _client.SendAsync(method, path, body, Ct);
        }
        catch
        {
            _client.Dispose();
            _client = null;
            throw;
        }
    }

    public Task<ApiAnswer> Get(string path) => SendAsync("GET", path);

    public Task<ApiAnswer> Put(string path, string body) => SendAsync("PUT", path, body);

    public Task<ApiAnswer> Patch(string path, string body) => SendAsync("PATCH", path, body);

    /// <summary>Sends and insists on 204.</summary>
    public async Task Ok(string method, string path, string body)
    {
        var answer = await SendAsync(method, path, body);
        Assert.True(answer.Status == 204, $"{method} {path} answered {answer.Status} {answer.Body}");
    }

    public static string Fault(ApiAnswer answer) => JsonNode.Parse(answer.Body)!["fault_message"]!.GetValue<string>();

    public async Task<string> StateAsync() => JsonNode.Parse((await Get("/")).Body)!["state"]!.GetValue<string>();

    /// <summary>Configures a bootable VM (kernel, console, reboot=k) and starts it.</summary>
    public async Task BootAsync(int vcpus = 1, string bootArgs = "console=ttyS0 reboot=k panic=1")
    {
        await Ok("PUT", "/machine-config", $$"""{"vcpu_count": {{vcpus}}, "mem_size_mib": 128}""");
        await Ok("PUT", "/boot-source", $$"""{"kernel_image_path": "{{Kernel}}", "boot_args": "{{bootArgs}}"}""");
        await Ok("PUT", "/actions", """{"action_type": "InstanceStart"}""");
    }

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        await Process.DisposeAsync();
    }
}
