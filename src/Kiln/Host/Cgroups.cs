// The cgroups a jailer makes for a VMM: where they are (v1: one directory per controller hierarchy; v2: one directory
// in the unified hierarchy), reading their limits back, and removing them once the VMM is gone. The jailer removes
// nothing itself (jailer FACTS.md), so this is Kiln's clean-up.
using System.Globalization;

namespace Kiln.Host;

/// <summary>The cgroup interface version the jailer uses.</summary>
public enum CgroupVersion
{
    /// <summary>One hierarchy per controller (<c>/sys/fs/cgroup/cpu</c>, <c>/sys/fs/cgroup/memory</c>, …).</summary>
    V1 = 1,

    /// <summary>The unified hierarchy (<c>cgroup2</c>).</summary>
    V2 = 2,
}

/// <summary>Cgroup hierarchies as <c>/proc/mounts</c> lists them.</summary>
public static class Cgroups
{
    /// <summary>The mount point of the v1 hierarchy that holds <paramref name="controller"/>, or null.</summary>
    public static string? FindV1Hierarchy(string controller)
    {
        foreach (var (mountPoint, fsType, options) in Mounts())
        {
            if (fsType == "cgroup" && options.Split(',').Contains(controller))
                return mountPoint;
        }
        return null;
    }

    /// <summary>The mount point of the unified (v2) hierarchy, or null.</summary>
    public static string? FindV2Hierarchy() => Mounts().Where(m => m.FsType == "cgroup2").Select(m => m.MountPoint).FirstOrDefault();

    /// <summary>The controllers the v2 hierarchy offers (its root's <c>cgroup.controllers</c>); empty without one.</summary>
    public static IReadOnlyList<string> V2Controllers()
    {
        var root = FindV2Hierarchy();
        if (root is null)
            return [];
        try
        {
            return File.ReadAllText(Path.Combine(root, "cgroup.controllers")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>Whether this machine can give a jailed VMM a <paramref name="controller"/> cgroup of that version.</summary>
    public static bool HasController(CgroupVersion version, string controller) =>
        version == CgroupVersion.V2 ? V2Controllers().Contains(controller) : FindV1Hierarchy(controller) is not null;

    /// <summary>
    /// The directory of the cgroup <c>&lt;parent&gt;/&lt;id&gt;</c> for a controller: the controller's hierarchy under
    /// v1, the unified one under v2. Null when the machine has no such hierarchy.
    /// </summary>
    public static string? Directory(CgroupVersion version, string controller, string parent, string id)
    {
        var root = version == CgroupVersion.V2 ? FindV2Hierarchy() : FindV1Hierarchy(controller);
        return root is null ? null : Path.Combine(root, parent, id);
    }

    /// <summary>A cgroup file's value (trimmed), or null when the cgroup or the file does not exist.</summary>
    public static string? TryRead(string cgroupDirectory, string file)
    {
        try
        {
            return File.ReadAllText(Path.Combine(cgroupDirectory, file)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The PIDs in a cgroup (empty when it does not exist).</summary>
    public static IReadOnlyList<int> Processes(string cgroupDirectory) =>
        (TryRead(cgroupDirectory, "cgroup.procs") ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToList();

    /// <summary>
    /// Removes cgroup directories (rmdir: a cgroup with processes cannot go). A process that has just been killed
    /// leaves its cgroup a moment later, so each removal is retried until <paramref name="deadline"/> passes.
    /// </summary>
    /// <exception cref="IOException">A cgroup was still in use at the deadline.</exception>
    public static async Task RemoveAsync(IEnumerable<string> cgroupDirectories, TimeSpan deadline, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cgroupDirectories);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var started = timeProvider.GetTimestamp();
        foreach (var dir in cgroupDirectories)
        {
            while (true)
            {
                try
                {
                    if (System.IO.Directory.Exists(dir))
                        System.IO.Directory.Delete(dir);
                    break;
                }
                catch (IOException) when (timeProvider.GetElapsedTime(started) < deadline)
                {
                    // EBUSY: the dead VMM is still being taken out of it. Kernel-side, short; poll gently.
                    await Task.Delay(TimeSpan.FromMilliseconds(5), timeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    throw new IOException($"cgroup {dir} is still in use (processes: {string.Join(' ', Processes(dir))})", e);
                }
            }
        }
    }

    private static IEnumerable<(string MountPoint, string FsType, string Options)> Mounts()
    {
        foreach (var line in File.ReadLines("/proc/mounts"))
        {
            var f = line.Split(' ');
            if (f.Length >= 4)
                yield return (f[1], f[2], f[3]);
        }
    }
}
