// Where the jailer puts things for one VMM (jailer FACTS.md): <base>/<exec file name>/<id>/root is the chroot, the
// PID file is <root>/<exec file name>.pid, and Firecracker's default API socket is /run/firecracker.socket inside.
namespace Kiln.Vmm;

/// <summary>The paths of one jail, on the host and inside.</summary>
/// <param name="ChrootBase">The chroot base directory.</param>
/// <param name="ExecFileName">The file name of the (canonical) exec file: the jailer's directory level and the copy's name.</param>
/// <param name="Id">The VMM's id.</param>
public sealed record JailLayout(string ChrootBase, string ExecFileName, string Id)
{
    /// <summary>The API socket as the jailed VMM sees it.</summary>
    public const string ApiSocketInJail = "/run/firecracker.socket";

    /// <summary><c>&lt;base&gt;/&lt;exec name&gt;/&lt;id&gt;</c>: everything the jail made, removed at clean-up.</summary>
    public string InstanceDirectory => Path.Combine(ChrootBase, ExecFileName, Id);

    /// <summary>The chroot (the VMM's <c>/</c>).</summary>
    public string Root => Path.Combine(InstanceDirectory, "root");

    /// <summary>The jailer's PID file: the host PID of the VMM.</summary>
    public string PidFile => Path.Combine(Root, ExecFileName + ".pid");

    /// <summary>What <c>/proc/PID/exe</c> reads for the jailed VMM (its path inside the chroot).</summary>
    public string ExecutableInJail => "/" + ExecFileName;

    /// <summary>The API socket on the host.</summary>
    public string ApiSocketOnHost => OnHost(ApiSocketInJail);

    /// <summary>The host path of a path inside the jail.</summary>
    public string OnHost(string pathInJail)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathInJail);
        return pathInJail.StartsWith('/') ? Root + pathInJail : throw new ArgumentException($"'{pathInJail}' is not absolute", nameof(pathInJail));
    }

    /// <summary>The layout the jailer will make for these settings, exec file (symlinks resolved, as it does) and id.</summary>
    public static JailLayout For(JailSettings settings, string firecrackerPath, string id)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var exec = VmmProcess.ResolveExecutable(firecrackerPath) ?? firecrackerPath;
        try
        {
            exec = File.ResolveLinkTarget(exec, returnFinalTarget: true)?.FullName ?? exec;
        }
        catch (IOException)
        {
            // Not a link, or unreadable: the name as given.
        }
        var baseDir = Path.GetFullPath(settings.ChrootBaseDirectory);
        try
        {
            baseDir = Directory.ResolveLinkTarget(baseDir, returnFinalTarget: true)?.FullName ?? baseDir;
        }
        catch (IOException)
        {
            // Not a link, or unreadable: the directory as given.
        }
        return new JailLayout(baseDir, Path.GetFileName(exec), id);
    }
}
