// The jailer's cgroups (src/jailer/src/cgroup.rs): one `--cgroup FILE=VALUE` each. Version 1 finds the hierarchy
// that mounts FILE's controller, makes `<hierarchy>/<parent>/<id>`, first copies the parent's value of FILE into it
// (what the jailer calls inheriting from the parent) and then writes VALUE. Version 2 uses the unified hierarchy,
// requires the controller in its cgroup.controllers and enables it in every ancestor's cgroup.subtree_control.
// The process joins each cgroup through cgroup.procs after all values are written.
using System.Globalization;

namespace Kiln.FakeFirecracker.Jailer;

internal sealed record JailCgroup(int Version, string Root, string Location, string File, string Value, string Controller)
{
    /// <summary>Builds one cgroup from a `FILE=VALUE` argument; fails as the jailer's builder does.</summary>
    public static JailCgroup Create(int version, string argument, string id, string parent)
    {
        var parts = argument.Split('=');
        if (parts.Length != 2 || parts[1].Length == 0)
            throw JailerError.CgroupFormat(argument);
        var file = parts[0];
        var controller = file.Split('.')[0];
        string root;
        if (version == 2)
        {
            root = FindMount(fsType: "cgroup2", controller: null) ?? throw JailerError.CgroupHierarchyMissing("cgroup2");
            var available = ReadOrNull(Path.Combine(root, "cgroup.controllers"))?.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            if (!available.Contains(controller))
                throw JailerError.CgroupControllerUnavailable(controller);
        }
        else
        {
            root = FindMount(fsType: "cgroup", controller: controller) ?? throw JailerError.CgroupHierarchyMissing(controller);
        }

        return new JailCgroup(version, root, Path.Combine(root, parent, id), file, parts[1], controller);
    }

    /// <summary>Creates the cgroup and writes the value.</summary>
    public void WriteValue()
    {
        if (Version == 2)
        {
            // Every level from the hierarchy's root down to the parent must delegate the controller to its children.
            var relative = Path.GetRelativePath(Root, Location).Split('/');
            var dir = Root;
            foreach (var part in relative)
            {
                WriteLine(Path.Combine(dir, "cgroup.subtree_control"), "+" + Controller);
                dir = Path.Combine(dir, part);
                CreateDir(dir);
            }
        }
        else
        {
            CreateDir(Location);
            var parentFile = Path.Combine(Path.GetDirectoryName(Location)!, File);
            WriteLine(Path.Combine(Location, File), Inherited(parentFile));
        }

        WriteLine(Path.Combine(Location, File), Value);
    }

    /// <summary>Moves the calling process into the cgroup.</summary>
    public void Attach() => WriteLine(Path.Combine(Location, "cgroup.procs"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));

    // An empty value in the parent (cpuset.cpus of a fresh cgroup, say) is taken from its own parent, up to the root.
    private string Inherited(string parentFile)
    {
        var text = ReadToString(parentFile).TrimEnd('\n');
        var parentDir = Path.GetDirectoryName(parentFile)!;
        if (text.Length == 0 && parentDir != Root)
        {
            var upper = Path.Combine(Path.GetDirectoryName(parentDir)!, File);
            text = Inherited(upper);
            WriteLine(parentFile, text);
        }

        return text;
    }

    private static string ReadToString(string path)
    {
        try
        {
            return System.IO.File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw JailerError.ReadToString(path, JailerFiles.Errno(e));
        }
    }

    private static string? ReadOrNull(string path)
    {
        try
        {
            return System.IO.File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void WriteLine(string path, string value)
    {
        try
        {
            // Cgroup files take one write: open without truncation games, write the whole line.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
            var bytes = System.Text.Encoding.ASCII.GetBytes(value + "\n");
            stream.Write(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw JailerError.Write(path, JailerFiles.Errno(e));
        }
    }

    private static void CreateDir(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw JailerError.CreateDir(path, JailerFiles.Errno(e));
        }
    }

    // /proc/mounts: "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0".
    private static string? FindMount(string fsType, string? controller)
    {
        foreach (var line in System.IO.File.ReadLines("/proc/mounts"))
        {
            var fields = line.Split(' ');
            if (fields.Length < 4 || fields[2] != fsType)
                continue;
            if (controller is null || fields[3].Split(',').Contains(controller))
                return fields[1];
        }

        return null;
    }
}
