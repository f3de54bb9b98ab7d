// Where `kiln image build NAME` keeps images (ROOT/.images/NAME.ext4, beside ROOT/.templates: no sandbox name starts
// with '.'), how `kiln run --image` finds one by name or path, and which agent an image gets.
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Kiln.Cli.Infrastructure;

internal static partial class ImageFiles
{
    public static string Directory(string root) => Path.Combine(root, ".images");

    public static bool IsValidName(string name) => NamePattern().IsMatch(name);

    public static string PathFor(string root, string name) => Path.Combine(Directory(root), name + ".ext4");

    /// <summary>An existing file path as given, else the named image under the state root.</summary>
    /// <exception cref="UsageException">Neither exists.</exception>
    public static string Resolve(string root, string nameOrPath)
    {
        if (File.Exists(nameOrPath))
            return Path.GetFullPath(nameOrPath);
        if (IsValidName(nameOrPath) && File.Exists(PathFor(root, nameOrPath)))
            return PathFor(root, nameOrPath);
        throw new UsageException($"--image: no image file '{nameOrPath}' and no image of that name in {Directory(root)} (make one with 'kiln image build').");
    }

    /// <summary>--agent, else $KILN_AGENT, else a kiln-agent beside kiln itself.</summary>
    /// <exception cref="UsageException">None of them exists.</exception>
    public static string Agent(string? given)
    {
        if (given is not null)
            return File.Exists(given) ? Path.GetFullPath(given) : throw new UsageException($"--agent: no file '{given}'.");
        if (Environment.GetEnvironmentVariable("KILN_AGENT") is { Length: > 0 } fromEnvironment)
            return File.Exists(fromEnvironment) ? Path.GetFullPath(fromEnvironment) : throw new UsageException($"KILN_AGENT={fromEnvironment} does not exist.");
        var beside = Path.Combine(AppContext.BaseDirectory, "kiln-agent");
        if (File.Exists(beside) && !File.Exists(beside + ".dll"))
            return beside;
        throw new UsageException("no guest agent: give --agent PATH (or set KILN_AGENT) to a native kiln-agent, made with 'dotnet publish src/Kiln.Agent -c Release -r linux-x64'.");
    }

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();
}

internal sealed record ImageBuildJson(string Path, string Base, long SizeBytes, long ContentBytes, double Seconds);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ImageBuildJson))]
internal sealed partial class ImageJsonContext : JsonSerializerContext;
