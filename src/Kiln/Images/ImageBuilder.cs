// Builds a bootable ext4 root filesystem whose init is Kiln's guest agent, without mounting it: the root directory is
// staged (mmdebstrap for Debian, busybox for tiny), the agent added as /sbin/init, and `mkfs.ext4 -d` writes the
// file system from the directory into a new file. The image appears at its path only when complete (written beside
// it and renamed); a failed or cancelled build removes what it made.
using System.Diagnostics;
using System.Security.Cryptography;

namespace Kiln.Images;

/// <summary>Builds root filesystem images for guests that run Kiln's agent.</summary>
public static class ImageBuilder
{
    /// <summary>The volume label of every image Kiln builds.</summary>
    public const string Label = "kiln-root";

    /// <summary>Room left in a tiny image by default: for the files a test writes.</summary>
    public const long TinyHeadroomBytes = 24L * 1024 * 1024;

    /// <summary>Room left in a Debian image by default: for packages installed later and the user's files.</summary>
    public const long DebianHeadroomBytes = 512L * 1024 * 1024;

    private const string MkfsStep = "mkfs";

    /// <summary>Builds <paramref name="spec"/>, reporting each step to <paramref name="progress"/>.</summary>
    /// <exception cref="ImageSpecException">The spec is invalid (nothing was created).</exception>
    /// <exception cref="ImageBuildException">A step failed; what the build created was removed.</exception>
    public static async Task<ImageBuildResult> BuildAsync(ImageSpec spec, IProgress<ImageBuildProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("Images are built on Linux only.");
        if (spec.Base == ImageBase.Debian && !Environment.IsPrivilegedProcess)
            throw new ImageBuildException(DebianRoot.Step, "a Debian image needs root (mmdebstrap's root mode keeps the files' owners as dpkg set them); build a tiny one, or run as root");
        var mkfs = ImageTool.Require(MkfsStep, "mkfs.ext4", "e2fsprogs");
        // Without root, staged files belong to the caller: fakeroot makes mkfs.ext4 record them as root's.
        var fakeroot = Environment.IsPrivilegedProcess ? null : ImageTool.Require(MkfsStep, "fakeroot", "fakeroot");

        var started = Stopwatch.GetTimestamp();
        var output = Path.GetFullPath(spec.OutputPath);
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var directory = Path.GetDirectoryName(output)!;
        // Beside the output, not in /tmp: a Debian root is hundreds of MiB and /tmp is often a small tmpfs.
        var staging = Path.Combine(directory, $".{Path.GetFileName(output)}.staging-{nonce}");
        var partial = Path.Combine(directory, $".{Path.GetFileName(output)}.partial-{nonce}");
        var step = "stage";
        ImageBuildResult result;
        string? left;
        try
        {
            long content;
            if (spec.Base == ImageBase.Tiny)
            {
                Directory.CreateDirectory(staging);
                content = await TinyRoot.StageAsync(spec, staging, progress, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                step = DebianRoot.Step;
                progress?.Report(new ImageBuildProgress(DebianRoot.Step, null, $"mmdebstrap {spec.Suite} (minbase{(spec.Packages.Count > 0 ? " + " + string.Join(' ', spec.Packages) : "")})"));
                content = await DebianRoot.StageAsync(spec, staging, progress, cancellationToken).ConfigureAwait(false);
            }

            const string agentStep = "agent";
            step = agentStep;
            content += await StagedFiles.InstallAgentAsync(agentStep, spec.AgentPath, staging, cancellationToken).ConfigureAwait(false);
            progress?.Report(new ImageBuildProgress(agentStep, content, "/sbin/kiln-agent as /sbin/init"));

            step = MkfsStep;
            var size = spec.SizeBytes ?? DefaultSize(spec.Base, content);
            if (size < content)
                throw new ImageBuildException(MkfsStep, $"the image's size ({size} bytes) is smaller than what it must hold ({content} bytes)");
            progress?.Report(new ImageBuildProgress(MkfsStep, 0, $"ext4, {size / (1024 * 1024)} MiB"));
            string[] mkfsArgs = ["-q", "-F", "-t", "ext4", "-L", Label, "-d", staging, "-E", "root_owner=0:0", partial, $"{size / 1024}k"];
            await ImageTool.RunAsync(MkfsStep, fakeroot ?? mkfs, fakeroot is null ? mkfsArgs : [mkfs, .. mkfsArgs], TimeSpan.FromMinutes(20), null, cancellationToken)
                .ConfigureAwait(false);
            File.Move(partial, output, overwrite: spec.Overwrite);
            progress?.Report(new ImageBuildProgress(MkfsStep, content, output));
            result = new ImageBuildResult(output, new FileInfo(output).Length, content, spec.Base, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageBuildException(step, e.Message, innerException: e);
        }
        finally
        {
            RemoveQuietly(partial);
            // After a failure, that failure is what the caller gets; the staging directory has a unique name.
            left = RemoveStaging(staging);
        }

        if (left is not null)
            throw new ImageBuildException("cleanup", $"built {output}, but {left}");
        progress?.Report(new ImageBuildProgress("done", result.ContentBytes, output));
        return result;
    }

    /// <summary>What a build makes when no size is given: the content plus headroom, rounded up to a whole MiB.</summary>
    public static long DefaultSize(ImageBase imageBase, long contentBytes)
    {
        // ext4's own metadata (inode tables, the journal) takes a few percent; a quarter more covers it.
        var bytes = contentBytes + contentBytes / 4 + (imageBase == ImageBase.Tiny ? TinyHeadroomBytes : DebianHeadroomBytes);
        const long mib = 1024 * 1024;
        return Math.Max(ImageSpec.MinimumSizeBytes, (bytes + mib - 1) / mib * mib);
    }

    private static void RemoveQuietly(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The build's own result or error is what the caller needs; a leftover partial file has a unique name.
        }
    }

    /// <summary>Removes the staging directory; null when done, else what was left and why.</summary>
    private static string? RemoveStaging(string directory)
    {
        if (!Directory.Exists(directory))
            return null;
        try
        {
            // mmdebstrap mounts /proc, /sys and /dev/pts inside while dpkg runs; one killed mid-way leaves them. Deleting
            // through a mount would reach the host's files: unmount first, and delete nothing if a mount remains.
            Host.ChrootFiles.UnmountAllUnder(directory);
            if (MountedUnder(directory))
                return $"the staging directory {directory} still has mounts inside; it was left in place";
            // Directory.Delete removes symbolic links as links: the staged root's absolute links never lead it onto the host.
            Directory.Delete(directory, recursive: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"the staging directory {directory} could not be removed: {e.Message}";
        }
    }

    private static bool MountedUnder(string directory)
    {
        // mountinfo writes space, tab, newline and backslash as octal escapes: compare in that form.
        var escaped = directory.TrimEnd('/').Replace("\\", "\\134", StringComparison.Ordinal).Replace(" ", "\\040", StringComparison.Ordinal)
            .Replace("\t", "\\011", StringComparison.Ordinal).Replace("\n", "\\012", StringComparison.Ordinal);
        return File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
            .Any(m => m == escaped || m.StartsWith(escaped + "/", StringComparison.Ordinal));
    }
}
