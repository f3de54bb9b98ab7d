// `kiln run --jail …`: the jail options, parsed and checked before anything is created, and the jailer binary found
// the way firecracker is (--jailer, KILN_JAILER, beside firecracker — fake-jailer beside fake-firecracker — or PATH).
using System.CommandLine;
using System.Globalization;
using Kiln.Vmm;

namespace Kiln.Cli.Infrastructure;

internal sealed class JailSpecs
{
    public const string EnvironmentVariable = "KILN_JAILER";

    public Option<bool> Jail { get; } = new("--jail") { Description = "Run the VMM under Firecracker's jailer (chroot, uid/gid drop, cgroups, PID namespace)." };
    public Option<string?> Jailer { get; } = new("--jailer") { Description = "jailer binary (default: $KILN_JAILER, else beside firecracker, else jailer on PATH)." };
    public Option<uint?> Uid { get; } = new("--uid") { Description = "With --jail: the user the VMM runs as (must exist, not 0)." };
    public Option<uint?> Gid { get; } = new("--gid") { Description = "With --jail: the group the VMM runs as (must exist)." };
    public Option<double?> Cpus { get; } = new("--cpus") { Description = "With --jail: a CPU quota in CPUs, e.g. 1.5 (cgroup cpu)." };
    public Option<string?> MemoryLimit { get; } = new("--memory-limit") { Description = "With --jail: the VMM's memory limit, e.g. 512M or 2G (cgroup memory)." };
    public Option<string?> NetNs { get; } = new("--netns") { Description = "With --jail: a network namespace to join, e.g. /var/run/netns/NAME." };
    public Option<string?> ChrootBase { get; } = new("--chroot-base") { Description = "With --jail: where jails are made (default /srv/jailer)." };

    public IEnumerable<Option> All => [Jail, Jailer, Uid, Gid, Cpus, MemoryLimit, NetNs, ChrootBase];

    /// <summary>The jail settings, or null without --jail.</summary>
    /// <exception cref="UsageException">A jail option without --jail, a missing --uid/--gid, or an unreadable value.</exception>
    public JailSettings? Build(CommandContext context, string firecrackerPath)
    {
        if (!context.Value(Jail))
        {
            var stray = new Option[] { Jailer, Uid, Gid, Cpus, MemoryLimit, NetNs, ChrootBase }.FirstOrDefault(o => context.Parse.GetResult(o) is not null);
            return stray is null ? null : throw new UsageException($"{stray.Name} applies to a jailed run: add --jail.");
        }
        var uid = context.Value(Uid) ?? throw new UsageException("--jail needs --uid (the user the VMM runs as).");
        var gid = context.Value(Gid) ?? throw new UsageException("--jail needs --gid (the group the VMM runs as).");
        var settings = new JailSettings
        {
            JailerPath = LocateJailer(context.Value(Jailer), firecrackerPath),
            Uid = uid,
            Gid = gid,
            CpuQuota = context.Value(Cpus),
            MemoryLimitBytes = context.Value(MemoryLimit) is { } limit ? ParseSize(limit) : null,
            NetworkNamespacePath = context.Value(NetNs),
        };
        if (context.Value(ChrootBase) is { } chrootBase)
            settings = settings with { ChrootBaseDirectory = Path.GetFullPath(chrootBase) };
        return settings;
    }

    private static string LocateJailer(string? option, string firecrackerPath)
    {
        if (!string.IsNullOrWhiteSpace(option))
            return RequireFile(option, "--jailer");
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnvironment)
            return RequireFile(fromEnvironment, EnvironmentVariable);
        var dir = Path.GetDirectoryName(firecrackerPath)!;
        var beside = Path.Combine(dir, Path.GetFileName(firecrackerPath) == "fake-firecracker" ? "fake-jailer" : "jailer");
        if (File.Exists(beside))
            return beside;
        return FirecrackerLocator.SearchPath("jailer")
            ?? throw new UsageException($"jailer not found: pass --jailer PATH, set {EnvironmentVariable}, or put jailer beside firecracker or on PATH.");
    }

    private static string RequireFile(string path, string origin)
    {
        var full = Path.GetFullPath(path);
        return File.Exists(full) ? full : throw new UsageException($"jailer binary not found: {full} (from {origin}).");
    }

    /// <summary>Bytes from <c>N</c>, <c>NK</c>, <c>NM</c> or <c>NG</c> (powers of 1024).</summary>
    public static long ParseSize(string text)
    {
        var t = text.Trim();
        var (digits, shift) = t.Length > 0 && char.ToUpperInvariant(t[^1]) is var unit && unit is 'K' or 'M' or 'G'
            ? (t[..^1], unit switch { 'K' => 10, 'M' => 20, _ => 30 })
            : (t, 0);
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > long.MaxValue >> shift)
            throw new UsageException($"--memory-limit '{text}' is not a size such as 536870912, 512M or 2G.");
        return value << shift;
    }
}
