// What `kiln image build` makes: an ext4 root filesystem whose init is Kiln's guest agent, described as one immutable
// record and validated (naming the bad property) before any tool runs or any file is created.
using System.Text.RegularExpressions;

namespace Kiln.Images;

/// <summary>What the root filesystem holds besides the agent.</summary>
public enum ImageBase
{
    /// <summary>A Debian system (mmdebstrap's minbase variant plus <see cref="ImageSpec.Packages"/>); needs root and the network.</summary>
    Debian,

    /// <summary>busybox (from Debian's busybox-static) and the agent with the libraries it links: a few MiB, built in seconds.</summary>
    Tiny,
}

/// <summary>A root filesystem image to build.</summary>
public sealed partial record ImageSpec
{
    /// <summary>The image file to write (replaced only when <see cref="Overwrite"/> is set).</summary>
    public required string OutputPath { get; init; }

    /// <summary>The guest agent: a native (AOT) <c>kiln-agent</c>, installed as <c>/sbin/kiln-agent</c> and <c>/sbin/init</c>.</summary>
    public required string AgentPath { get; init; }

    /// <summary>What the image holds besides the agent.</summary>
    public ImageBase Base { get; init; } = ImageBase.Debian;

    /// <summary>The image's size in bytes; null: what it holds plus room to work (see <see cref="ImageBuilder"/>).</summary>
    public long? SizeBytes { get; init; }

    /// <summary>Extra Debian packages (<see cref="ImageBase.Debian"/> only).</summary>
    public IReadOnlyList<string> Packages { get; init; } = [];

    /// <summary>The Debian suite (<see cref="ImageBase.Debian"/> only).</summary>
    public string Suite { get; init; } = "bookworm";

    /// <summary>The Debian mirror (<see cref="ImageBase.Debian"/> only); null: mmdebstrap's default.</summary>
    public string? Mirror { get; init; }

    /// <summary>The static busybox to install (<see cref="ImageBase.Tiny"/> only); null: the one busybox-static installs.</summary>
    public string? BusyboxPath { get; init; }

    /// <summary>Replace <see cref="OutputPath"/> when it exists.</summary>
    public bool Overwrite { get; init; }

    /// <summary>The smallest image mkfs.ext4 makes usefully: 8 MiB.</summary>
    public const long MinimumSizeBytes = 8L * 1024 * 1024;

    /// <summary>The largest image Kiln builds: 1 TiB.</summary>
    public const long MaximumSizeBytes = 1L << 40;

    /// <summary>Checks every property; nothing is touched.</summary>
    /// <exception cref="ImageSpecException">A property is invalid; it is named.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputPath))
            throw new ImageSpecException(nameof(OutputPath), "give the image file to write");
        if (Directory.Exists(OutputPath))
            throw new ImageSpecException(nameof(OutputPath), $"{OutputPath} is a directory; give the image file to write");
        if (File.Exists(OutputPath) && !Overwrite)
            throw new ImageSpecException(nameof(OutputPath), $"{OutputPath} exists (set Overwrite to replace it)");
        var directory = Path.GetDirectoryName(Path.GetFullPath(OutputPath));
        if (directory is null || !Directory.Exists(directory))
            throw new ImageSpecException(nameof(OutputPath), $"the directory of {OutputPath} does not exist");
        if (string.IsNullOrWhiteSpace(AgentPath) || !File.Exists(AgentPath))
            throw new ImageSpecException(nameof(AgentPath), $"no agent at '{AgentPath}' (dotnet publish src/Kiln.Agent -c Release -r linux-x64)");
        // The framework-dependent build is an apphost beside kiln-agent.dll: a guest without .NET cannot run it.
        if (File.Exists(Path.ChangeExtension(Path.GetFullPath(AgentPath), ".dll")))
            throw new ImageSpecException(nameof(AgentPath), $"{AgentPath} is a framework-dependent build (kiln-agent.dll is beside it); the guest has no .NET: publish it native with -r linux-x64");
        if (!IsElf(AgentPath))
            throw new ImageSpecException(nameof(AgentPath), $"{AgentPath} is not a Linux executable (ELF)");
        if (!Enum.IsDefined(Base))
            throw new ImageSpecException(nameof(Base), $"unknown base {Base}");
        if (SizeBytes is { } size && size is < MinimumSizeBytes or > MaximumSizeBytes)
            throw new ImageSpecException(nameof(SizeBytes), $"the size must be between 8 MiB and 1 TiB, not {size} bytes");
        if (Base == ImageBase.Tiny)
        {
            if (Packages.Count > 0)
                throw new ImageSpecException(nameof(Packages), "a tiny image holds busybox and the agent only; extra packages need the Debian base");
            if (BusyboxPath is not null && !File.Exists(BusyboxPath))
                throw new ImageSpecException(nameof(BusyboxPath), $"no busybox at '{BusyboxPath}'");
            return;
        }

        if (BusyboxPath is not null)
            throw new ImageSpecException(nameof(BusyboxPath), "busybox is installed by the tiny base only");
        // Each name ends up in mmdebstrap's --include list: Debian's package name rule, nothing else.
        if (Packages.FirstOrDefault(p => !PackageName().IsMatch(p)) is { } bad)
            throw new ImageSpecException(nameof(Packages), $"'{bad}' is not a Debian package name");
        if (!SuiteName().IsMatch(Suite))
            throw new ImageSpecException(nameof(Suite), $"'{Suite}' is not a Debian suite name");
        if (Mirror is not null && !(Uri.TryCreate(Mirror, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "file"))
            throw new ImageSpecException(nameof(Mirror), $"'{Mirror}' is not an http, https or file URL");
    }

    private static bool IsElf(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var file = File.OpenRead(path);
        return file.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("\u007fELF"u8);
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9+.-]{1,99}$")]
    private static partial Regex PackageName();

    [GeneratedRegex("^[a-z][a-z0-9-]{1,31}$")]
    private static partial Regex SuiteName();
}
