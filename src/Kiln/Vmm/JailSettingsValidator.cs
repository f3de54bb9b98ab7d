// Everything the jailer would refuse, and what would make the jail useless, refused before anything starts.
using Kiln.Host;
using Kiln.Interop;

namespace Kiln.Vmm;

/// <summary>Checks <see cref="JailSettings"/> (and the VMM's id and files) before launch; each error names the property.</summary>
public static class JailSettingsValidator
{
    /// <summary>The jailer's instance id rule (src/utils/src/validators.rs): 1 to 64 ASCII letters, digits or '-'.</summary>
    public static string? IdProblem(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (id.Length is < 1 or > 64)
            return $"is {id.Length} characters long; the jailer takes 1 to 64";
        var bad = id.FirstOrDefault(c => !(char.IsAsciiLetterOrDigit(c) || c == '-'));
        return bad == default ? null : $"contains '{bad}'; the jailer takes only ASCII letters, digits and '-'";
    }

    /// <summary>Throws <see cref="JailConfigurationException"/> for the first bad setting.</summary>
    /// <param name="settings">The jail.</param>
    /// <param name="id">The VMM's id (a path part of the chroot, and the cgroup's name).</param>
    /// <param name="firecrackerPath">The exec file.</param>
    /// <param name="files">The host files that will be exposed inside the chroot.</param>
    public static void Validate(JailSettings settings, string id, string firecrackerPath, IEnumerable<string> files)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(files);
        if (IdProblem(id) is { } idProblem)
            throw new JailConfigurationException("Id", $"'{id}' {idProblem}");
        if (string.IsNullOrWhiteSpace(settings.JailerPath) || VmmProcess.ResolveExecutable(settings.JailerPath) is null)
            throw Bad(nameof(settings.JailerPath), $"'{settings.JailerPath}' was not found");
        if (settings.Uid == 0)
            throw Bad(nameof(settings.Uid), "is 0: a jailed VMM must not run as root");
        if (!LibC.UserExists(settings.Uid))
            throw Bad(nameof(settings.Uid), $"{settings.Uid} is not a user on this machine");
        if (!LibC.GroupExists(settings.Gid))
            throw Bad(nameof(settings.Gid), $"{settings.Gid} is not a group on this machine");
        if (!Directory.Exists(settings.ChrootBaseDirectory))
            throw Bad(nameof(settings.ChrootBaseDirectory), $"'{settings.ChrootBaseDirectory}' is not a directory");
        var layout = JailLayout.For(settings, firecrackerPath, id);
        if (System.Text.Encoding.UTF8.GetByteCount(layout.ApiSocketOnHost) > Api.UnixSocketPath.MaxLength)
            throw Bad(nameof(settings.ChrootBaseDirectory), $"makes the API socket path {layout.ApiSocketOnHost} longer than {Api.UnixSocketPath.MaxLength} bytes");
        if (settings.CgroupVersion is not (CgroupVersion.V1 or CgroupVersion.V2))
            throw Bad(nameof(settings.CgroupVersion), $"is {(int)settings.CgroupVersion}; the jailer takes 1 or 2");
        if (settings.ParentCgroup is { } parent && (parent.Length == 0 || parent.StartsWith('/') || parent.Split('/').Any(p => p is "" or "." or "..")))
            throw Bad(nameof(settings.ParentCgroup), $"'{parent}' must be a relative path without empty, . or .. parts");
        if (settings.CpuQuota is { } cpus && (double.IsNaN(cpus) || cpus < 0.01 || cpus > Environment.ProcessorCount))
            throw Bad(nameof(settings.CpuQuota), $"is {cpus}; it must be 0.01 to this machine's {Environment.ProcessorCount} CPUs");
        if (settings.MemoryLimitBytes is { } memory && memory < 16L << 20)
            throw Bad(nameof(settings.MemoryLimitBytes), $"is {memory}; a VMM needs at least 16 MiB");
        if (settings.Cpuset is { } cpuset && (cpuset.Length == 0 || !cpuset.All(c => char.IsAsciiDigit(c) || c is ',' or '-')))
            throw Bad(nameof(settings.Cpuset), $"'{cpuset}' is not a CPU list such as 0-1,3");
        foreach (var (file, _) in settings.CgroupValues())
        {
            var controller = file.Split('.')[0];
            if (!Cgroups.HasController(settings.CgroupVersion, controller))
                throw Bad(file.StartsWith("cpuset", StringComparison.Ordinal) ? nameof(settings.Cpuset) : file.StartsWith("cpu", StringComparison.Ordinal) ? nameof(settings.CpuQuota) : nameof(settings.MemoryLimitBytes),
                    $"needs the {controller} controller in cgroup v{(int)settings.CgroupVersion}, which this machine does not offer");
        }
        if (settings.NetworkNamespacePath is { } netns && !File.Exists(netns))
            throw Bad(nameof(settings.NetworkNamespacePath), $"'{netns}' does not exist");
        if (settings.FileSizeLimit is 0)
            throw Bad(nameof(settings.FileSizeLimit), "is 0; the VMM could not write its socket or log");
        if (settings.OpenFilesLimit is { } noFile && (noFile < 64 || noFile > 1UL << 20))
            throw Bad(nameof(settings.OpenFilesLimit), $"is {noFile}; it must be 64 to {1 << 20}");
        if (!Enum.IsDefined(settings.FileExposure))
            throw Bad(nameof(settings.FileExposure), $"is {(int)settings.FileExposure}");
        foreach (var file in files)
        {
            if (!File.Exists(file))
                throw new JailConfigurationException(file, "does not exist");
            if (settings.FileExposure == JailFileExposure.HardLink && !ChrootFiles.SameFileSystem(file, settings.ChrootBaseDirectory))
                throw Bad(nameof(settings.FileExposure), $"is HardLink but {file} is on another file system than {settings.ChrootBaseDirectory}; use BindMount or Copy");
        }
    }

    private static JailConfigurationException Bad(string property, string message) => new(property, message);
}
