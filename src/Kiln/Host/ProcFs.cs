// Reads what Kiln needs from procfs: a process's start time (its identity, together with its PID), its executable,
// and its threads' names (vCPU threads are named "fc_vcpu N").
using System.Globalization;

namespace Kiln.Host;

/// <summary>A thread of a process: its id and its name (<c>/proc/PID/task/TID/comm</c>).</summary>
public sealed record ProcessThread(int Id, string Name);

/// <summary>
/// Who a PID is: the PID plus the kernel's start time (clock ticks since boot, <c>/proc/PID/stat</c> field 22) and
/// the executable. PIDs are reused; a PID with the same start time and executable is the same process.
/// </summary>
/// <param name="Pid">The process id.</param>
/// <param name="StartTimeTicks">Field 22 of <c>/proc/PID/stat</c>.</param>
/// <param name="ExecutablePath">The target of <c>/proc/PID/exe</c> when it could be read.</param>
public sealed record ProcessIdentity(int Pid, ulong StartTimeTicks, string? ExecutablePath);

/// <summary>procfs readers. Every method answers about the live system; a process that is gone yields null/empty.</summary>
public static class ProcFs
{
    private const string Root = "/proc";

    /// <summary>
    /// The start time (field 22 of <c>/proc/PID/stat</c>), or null when the process does not exist or is a zombie
    /// (dead, waiting to be reaped: nothing to signal any more).
    /// </summary>
    public static ulong? TryGetStartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"{Root}/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
        return IsZombie(stat) ? null : ParseStartTime(stat);
    }

    /// <summary>Whether a stat line's state (field 3) is Z (zombie) or X (dead).</summary>
    public static bool IsZombie(string statLine)
    {
        ArgumentNullException.ThrowIfNull(statLine);
        var close = statLine.LastIndexOf(')');
        var rest = close < 0 ? "" : statLine.AsSpan(close + 1).TrimStart();
        return !rest.IsEmpty && rest[0] is 'Z' or 'X';
    }

    /// <summary>
    /// Field 22 of a stat line. The comm (field 2) is in parentheses and may itself hold spaces and parentheses, so
    /// fields are counted from the last ')'.
    /// </summary>
    public static ulong? ParseStartTime(string statLine)
    {
        ArgumentNullException.ThrowIfNull(statLine);
        var close = statLine.LastIndexOf(')');
        if (close < 0)
            return null;
        var rest = statLine.AsSpan(close + 1).Trim();
        // After the comm: field 3 (state) is index 0, so field 22 is index 19.
        var index = 0;
        foreach (var range in rest.Split(' '))
        {
            var field = rest[range];
            if (field.IsEmpty)
                continue;
            if (index == 19)
                return ulong.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
            index++;
        }
        return null;
    }

    /// <summary>The executable of a process, or null when it is gone or not readable (another user's process).</summary>
    public static string? TryGetExecutable(int pid)
    {
        try
        {
            var link = new FileInfo($"{Root}/{pid.ToString(CultureInfo.InvariantCulture)}/exe").LinkTarget;
            // The kernel appends " (deleted)" when the binary was replaced on disk; identity is still its path.
            const string deleted = " (deleted)";
            return link is not null && link.EndsWith(deleted, StringComparison.Ordinal) ? link[..^deleted.Length] : link;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The process's name (<c>/proc/PID/comm</c>, at most 15 bytes), or null when it is gone.</summary>
    public static string? TryGetName(int pid) => TryReadLine($"{Root}/{pid.ToString(CultureInfo.InvariantCulture)}/comm");

    /// <summary>The identity of a live process, or null when it does not exist.</summary>
    public static ProcessIdentity? TryGetIdentity(int pid)
    {
        var start = TryGetStartTime(pid);
        return start is null ? null : new ProcessIdentity(pid, start.Value, TryGetExecutable(pid));
    }

    /// <summary>
    /// Whether the live process with this PID is the one recorded: same start time, and the same executable when
    /// both are known. False when it is gone.
    /// </summary>
    public static bool IsSameProcess(ProcessIdentity recorded)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        var live = TryGetIdentity(recorded.Pid);
        if (live is null || live.StartTimeTicks != recorded.StartTimeTicks)
            return false;
        return recorded.ExecutablePath is null || live.ExecutablePath is null
            || string.Equals(recorded.ExecutablePath, live.ExecutablePath, StringComparison.Ordinal);
    }

    /// <summary>
    /// Now, in the unit of a process's start time (<c>/proc/PID/stat</c> field 22): clock ticks since boot, read from
    /// <c>/proc/uptime</c> (procfs reports both in USER_HZ, 100 per second on Linux).
    /// </summary>
    public static ulong TicksSinceBoot()
    {
        var uptime = File.ReadAllText($"{Root}/uptime");
        var seconds = uptime.AsSpan(0, uptime.IndexOf(' ', StringComparison.Ordinal));
        return (ulong)(decimal.Parse(seconds, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture) * 100m);
    }

    /// <summary>A process's arguments (<c>/proc/PID/cmdline</c>), or null when it is gone or not readable.</summary>
    public static IReadOnlyList<string>? TryGetCommandLine(int pid)
    {
        try
        {
            var raw = File.ReadAllText($"{Root}/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline");
            return raw.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The PIDs of every live process (the numeric entries of <c>/proc</c>).</summary>
    public static IEnumerable<int> EnumeratePids()
    {
        foreach (var entry in Directory.EnumerateDirectories(Root))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                yield return pid;
        }
    }

    /// <summary>
    /// The PIDs of a process's children, found by scanning every <c>/proc/PID/stat</c>'s parent field (the kernel's own
    /// children list needs CONFIG_PROC_CHILDREN, which Debian's kernels lack). Empty when it has none or is gone.
    /// </summary>
    public static IReadOnlyList<int> GetChildren(int pid)
    {
        var children = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories(Root))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var candidate))
                continue;
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(entry, "stat"));
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
            {
                continue;
            }
            if (ParseParentPid(stat) == pid)
                children.Add(candidate);
        }
        children.Sort();
        return children;
    }

    /// <summary>Field 4 of a stat line (the parent's PID), counted from the last ')' as the comm may hold anything.</summary>
    public static int? ParseParentPid(string statLine)
    {
        ArgumentNullException.ThrowIfNull(statLine);
        var close = statLine.LastIndexOf(')');
        if (close < 0)
            return null;
        var fields = statLine[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 1 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ppid) ? ppid : null;
    }

    /// <summary>
    /// The process's PID in each PID namespace from procfs's own (the host's) down to the process's
    /// (<c>NSpid</c> in <c>/proc/PID/status</c>): one entry outside any nested namespace, and the last is 1 for a
    /// namespace's init. Empty when it is gone.
    /// </summary>
    public static IReadOnlyList<int> GetNamespacePids(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"{Root}/{pid.ToString(CultureInfo.InvariantCulture)}/status"))
            {
                if (!line.StartsWith("NSpid:", StringComparison.Ordinal))
                    continue;
                return line["NSpid:".Length..].Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries)
                    .Select(f => int.Parse(f, NumberStyles.None, CultureInfo.InvariantCulture)).ToList();
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            // Gone.
        }
        return [];
    }

    /// <summary>The threads of a process (empty when it is gone). Threads that end while listing are skipped.</summary>
    public static IReadOnlyList<ProcessThread> GetThreads(int pid)
    {
        var dir = $"{Root}/{pid.ToString(CultureInfo.InvariantCulture)}/task";
        string[] entries;
        try
        {
            entries = Directory.GetDirectories(dir);
        }
        catch (Exception e) when (e is DirectoryNotFoundException or IOException)
        {
            return [];
        }
        var threads = new List<ProcessThread>(entries.Length);
        foreach (var entry in entries)
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var tid))
                continue;
            var name = TryReadLine(Path.Combine(entry, "comm"));
            if (name is not null)
                threads.Add(new ProcessThread(tid, name));
        }
        threads.Sort((a, b) => a.Id.CompareTo(b.Id));
        return threads;
    }

    /// <summary>
    /// vCPU index → thread id, from threads named <c>fc_vcpu N</c> (Firecracker names them with a space before the
    /// index). Other threads are ignored; a malformed vCPU thread name is an error, not a silent skip.
    /// </summary>
    public static IReadOnlyDictionary<int, int> ParseVcpuThreads(IEnumerable<ProcessThread> threads)
    {
        ArgumentNullException.ThrowIfNull(threads);
        const string prefix = "fc_vcpu";
        var map = new SortedDictionary<int, int>();
        foreach (var thread in threads)
        {
            if (!thread.Name.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            var index = thread.Name.AsSpan(prefix.Length).Trim();
            if (!int.TryParse(index, NumberStyles.None, CultureInfo.InvariantCulture, out var vcpu))
                throw new FormatException($"Unexpected vCPU thread name '{thread.Name}' (thread {thread.Id}).");
            map[vcpu] = thread.Id;
        }
        return map;
    }

    private static string? TryReadLine(string path)
    {
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
    }
}
