// The Debian base: mmdebstrap's minbase variant (apt, dpkg, bash, coreutils — no init system, no kernel: the agent is
// init and Firecracker boots the kernel) plus the packages asked for, into a plain directory. mmdebstrap's root mode
// mounts /proc and /dev inside that directory while dpkg runs (and unmounts them); the image file itself is never
// mounted, and no account is given a password.
namespace Kiln.Images;

internal static class DebianRoot
{
    public const string Step = "debootstrap";

    /// <summary>How long mmdebstrap may take: it downloads and unpacks every package.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(30);

    /// <summary>Fills <paramref name="root"/> (which must not exist yet) and returns the bytes it holds.</summary>
    public static async Task<long> StageAsync(ImageSpec spec, string root, IProgress<ImageBuildProgress>? progress, CancellationToken cancellationToken)
    {
        var mmdebstrap = ImageTool.Require(Step, "mmdebstrap", "mmdebstrap");
        var args = new List<string> { "--mode=root", "--variant=minbase", "--format=directory" };
        if (spec.Packages.Count > 0)
            args.Add("--include=" + string.Join(',', spec.Packages));
        args.Add(spec.Suite);
        args.Add(root);
        if (spec.Mirror is not null)
            args.Add(spec.Mirror);
        await ImageTool.RunAsync(Step, mmdebstrap, args, Timeout, line => progress?.Report(new ImageBuildProgress(Step, null, line)), cancellationToken)
            .ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(root, "etc/hostname"), "kiln\n", cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(Path.Combine(root, "work"));
        return DirectorySize(root);
    }

    /// <summary>The bytes of every regular file under <paramref name="root"/>, links not followed.</summary>
    public static long DirectorySize(string root)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
        return new DirectoryInfo(root).EnumerateFiles("*", options).Sum(f => f.Length);
    }
}
