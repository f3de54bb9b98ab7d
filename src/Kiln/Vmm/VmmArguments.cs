// The firecracker command line as an immutable value: each With… returns a new one (CliWrap's command objects).
using System.Globalization;

namespace Kiln.Vmm;

/// <summary>The arguments of one firecracker process.</summary>
/// <param name="ApiSocketPath">The API socket (<c>--api-sock</c>); must not exist when the process starts.</param>
public sealed record VmmArguments(string ApiSocketPath)
{
    /// <summary>The instance id (<c>--id</c>): shown in Firecracker's log lines and in <c>GET /</c>.</summary>
    public string? Id { get; init; }

    /// <summary>Firecracker's own log file (<c>--log-path</c>); its log goes to stdout when null.</summary>
    public string? LogPath { get; init; }

    /// <summary>Firecracker's log level (<c>--level</c>).</summary>
    public string? LogLevel { get; init; }

    /// <summary>A metrics file (<c>--metrics-path</c>).</summary>
    public string? MetricsPath { get; init; }

    /// <summary>Print boot-time markers (<c>--boot-timer</c>).</summary>
    public bool BootTimer { get; init; }

    /// <summary>Turn seccomp off (<c>--no-seccomp</c>): for debugging only.</summary>
    public bool NoSeccomp { get; init; }

    /// <summary>Enable PCI (<c>--enable-pci</c>, Firecracker ≥ 1.16 developer preview).</summary>
    public bool EnablePci { get; init; }

    /// <summary>The API's maximum request body (<c>--http-api-max-payload-size</c>).</summary>
    public int? ApiMaxPayloadBytes { get; init; }

    /// <summary>A <c>--config-file</c> document: Firecracker configures and starts the VM from it before serving its API.</summary>
    public string? ConfigFilePath { get; init; }

    /// <summary>Returns a copy with another id.</summary>
    public VmmArguments WithId(string? id) => this with { Id = id };

    /// <summary>Returns a copy with another log file.</summary>
    public VmmArguments WithLog(string? path, string? level = null) => this with { LogPath = path, LogLevel = level };

    /// <summary>The argument list, in the order Firecracker documents.</summary>
    public IReadOnlyList<string> ToList()
    {
        var args = new List<string> { "--api-sock", ApiSocketPath };
        if (Id is not null)
            args.AddRange(["--id", Id]);
        if (LogPath is not null)
            args.AddRange(["--log-path", LogPath]);
        if (LogLevel is not null)
            args.AddRange(["--level", LogLevel]);
        if (MetricsPath is not null)
            args.AddRange(["--metrics-path", MetricsPath]);
        if (ConfigFilePath is not null)
            args.AddRange(["--config-file", ConfigFilePath]);
        if (BootTimer)
            args.Add("--boot-timer");
        if (NoSeccomp)
            args.Add("--no-seccomp");
        if (EnablePci)
            args.Add("--enable-pci");
        if (ApiMaxPayloadBytes is { } max)
            args.AddRange(["--http-api-max-payload-size", max.ToString(CultureInfo.InvariantCulture)]);
        return args;
    }
}
