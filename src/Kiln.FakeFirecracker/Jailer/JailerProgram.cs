// fake-jailer: Firecracker v1.16.1's jailer as far as Kiln relies on it (docs/jailer.md, src/jailer/src/env.rs and
// tests/assets/jailer/FACTS.md). It is the stand-in's own executable: a copy of the fake-firecracker apphost named
// `fake-jailer`, which Program.cs hands over to here.
//
// Two things differ from the real jailer because the stand-in is a .NET program, and both stay invisible to the
// host's mount table:
// - A jailed .NET program needs its runtime: inside its private mount namespace the jail gets the host's /usr
//   read-only, /proc, the lib symlinks, and (for a framework-dependent exec file) the managed files beside it, bound
//   read-only. Their mount points are left in the tree as empty entries (the tree is the caller's to remove anyway).
// - With --new-pid-ns the child that becomes PID 1 is a fresh fake-jailer process (a .NET process cannot safely fork),
//   which enters the jail and execs; the parent writes the PID file and exits 0, as the real one does.
// The jailer clears the environment before exec; the stand-in keeps only FAKE_FC_* (its failure knobs).
using System.Diagnostics;
using System.Globalization;
using Kiln.FakeFirecracker.Interop;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Jailer;

internal static class JailerProgram
{
    public const string Version = "1.16.1";
    private const string StageVariable = "FAKE_JAILER_STAGE";
    private static readonly string[] UnshareTools = ["/usr/bin/unshare", "/bin/unshare"];

    private static readonly (string Path, uint Major, uint Minor)[] Devices =
    [
        ("/dev/net/tun", 10, 200),
        ("/dev/kvm", 10, 232),
        ("/dev/userfaultfd", 10, UserfaultfdMinor()),
        ("/dev/urandom", 1, 9),
    ];

    public static int Run(string[] args)
    {
        var startUs = MonotonicMicroseconds();
        var startCpuUs = CpuMicroseconds();
        try
        {
            var arguments = JailerArguments.Parse(args);
            if (arguments.Flag("help"))
            {
                Console.Out.Write(JailerHelpText.Text + "\n");
                return 0;
            }

            if (arguments.Flag("version"))
            {
                // jailer/src/main.rs main: println!("Jailer v{}\n", JAILER_VERSION), hence the blank line.
                Console.Out.Write($"Jailer v{Version}\n\n");
                return 0;
            }

            var settings = JailSettings.From(arguments);
            if (Environment.GetEnvironmentVariable(StageVariable) == "exec")
            {
                // The namespace's first process: its host PID is what /proc (still the host's here) calls "self".
                WritePidFile(settings, int.Parse(Path.GetFileName(new FileInfo("/proc/self").LinkTarget!), CultureInfo.InvariantCulture));
                return EnterAndExec(settings, startUs, startCpuUs, CpuMicroseconds());
            }

            CreateDirAll(settings.ChrootDir);
            return RunJailer(settings, args, startUs, startCpuUs);
        }
        catch (ArgParseException e)
        {
            return Fail(JailerError.Arguments(e));
        }
        catch (JailerError e)
        {
            return Fail(e);
        }
    }

    private static int Fail(JailerError e)
    {
        Console.Error.Write($"{FcLogger.Timestamp()} {e.Message}\n");
        Console.Error.Write($"Error: {e.Debug}\n");
        Console.Error.Flush();
        return 1;
    }

    // Env::run: copy the exec file, join the netns, set limits, cgroups, then jail and exec.
    private static int RunJailer(JailSettings s, string[] args, long startUs, long startCpuUs)
    {
        var jailedExec = Path.Combine(s.ChrootDir, s.ExecFileName);
        try
        {
            File.Copy(s.ExecFilePath, jailedExec, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw JailerError.Copy(s.ExecFilePath, jailedExec, JailerFiles.Errno(e));
        }

        Own(jailedExec, s);
        if (s.NetNs is { } netns)
            JoinNetNs(netns);

        if (s.FileSizeLimit is { } fsize && JailNativeMethods.SetRLimit(JailNativeMethods.RLIMIT_FSIZE, fsize) != 0)
            throw JailerError.Setrlimit("size of file");
        if (JailNativeMethods.SetRLimit(JailNativeMethods.RLIMIT_NOFILE, s.NoFileLimit) != 0)
            throw JailerError.Setrlimit("number of file descriptors");

        foreach (var cgroup in s.Cgroups)
            cgroup.WriteValue();
        foreach (var cgroup in s.Cgroups)
            cgroup.Attach();

        var devNull = -1;
        if (s.Daemonize)
        {
            devNull = NativeMethods.Open("/dev/null", NativeMethods.O_RDWR);
            if (devNull < 0)
                throw JailerError.Os("Failed to open /dev/null", "OpenDevNull", -devNull);
        }

        // The jailer makes these after pivoting into the jail; made from outside the result is the same tree.
        foreach (var folder in new[] { "", "dev", "dev/net", "run" })
        {
            var path = Path.Combine(s.ChrootDir, folder);
            CreateDirAll(path);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Own(path, s);
        }

        foreach (var (device, major, minor) in Devices)
        {
            if (minor == uint.MaxValue)
                continue;
            var path = s.ChrootDir + device;
            var rc = JailNativeMethods.MknodChar(path, major, minor);
            if (rc != 0)
                throw JailerError.MknodDev(rc, device);
            Own(path, s);
        }

        if (s.Daemonize)
        {
            var rc = JailNativeMethods.SetSid();
            if (rc != 0)
                throw JailerError.Os("Failed to daemonize: setsid", "SetSid", rc);
            foreach (var fd in new[] { 0, 1, 2 })
            {
                rc = JailNativeMethods.Dup2(devNull, fd);
                if (rc != 0)
                    throw JailerError.Os("Failed to duplicate fd", "Dup2", rc);
            }

            NativeMethods.Close(devNull);
        }

        // env.rs writes the PID file only from exec_into_new_pid_ns (the clone's parent): without --new-pid-ns the
        // exec file replaces the jailer in its own process and no PID file is written.
        if (!s.NewPidNs)
            return EnterAndExec(s, startUs, startCpuUs, 0);

        return SpawnInNewPidNamespace(s, args);
    }

    // The jailer clone()s into a new PID namespace; a .NET process can neither fork nor, once it has unshared the PID
    // namespace, start threads. So util-linux's `unshare --pid --fork` makes the namespace and its first process (a
    // fresh fake-jailer, stage "exec"), which writes its host PID into the PID file and execs. `unshare` itself only
    // waits for its child: once the PID file is there it is killed, the child is reparented to init and this jailer
    // exits 0, which is the tree the real one leaves.
    private static int SpawnInNewPidNamespace(JailSettings s, string[] args)
    {
        var unshare = UnshareTools.FirstOrDefault(File.Exists)
            ?? throw JailerError.Os("Failed cloning into a new child process", "Clone", 2);
        var psi = new ProcessStartInfo(unshare) { UseShellExecute = false };
        foreach (var arg in new[] { "--pid", "--fork", "--", Environment.ProcessPath! }.Concat(args))
            psi.ArgumentList.Add(arg);
        psi.Environment.Clear();
        foreach (var (key, value) in KeptEnvironment())
            psi.Environment[key] = value;
        psi.Environment[StageVariable] = "exec";
        using var forker = Process.Start(psi) ?? throw JailerError.Os("Failed cloning into a new child process", "Clone", 11);
        var deadline = Stopwatch.StartNew();
        while (!PidFileWritten(s.PidFilePath))
        {
            if (forker.WaitForExit(5))
                return forker.ExitCode == 0 ? 1 : forker.ExitCode;
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                forker.Kill(entireProcessTree: true);
                throw JailerError.Os("Failed cloning into a new child process", "Clone", 110);
            }
        }

        forker.Kill();
        forker.WaitForExit();
        return 0;
    }

    private static bool PidFileWritten(string path)
    {
        try
        {
            return new FileInfo(path) is { Exists: true, Length: > 0 };
        }
        catch (IOException)
        {
            return false;
        }
    }

    // chroot.rs: a private mount namespace, the jail bound onto itself, pivot_root into it, the old root detached.
    private static int EnterAndExec(JailSettings s, long startUs, long startCpuUs, long parentCpuUs)
    {
        var root = s.ChrootDir;
        Check(JailNativeMethods.Unshare(JailNativeMethods.CLONE_NEWNS), "Failed to unshare into new mount namespace", "UnshareNewNs");
        Check(JailNativeMethods.Mount(null, "/", null, JailNativeMethods.MS_SLAVE | JailNativeMethods.MS_REC),
            "Failed to change the propagation type to slave", "MountPropagationSlave");
        Check(JailNativeMethods.Mount(root, root, null, JailNativeMethods.MS_BIND | JailNativeMethods.MS_REC),
            "Failed to bind mount the jail root directory", "MountBind");
        ExposeRuntime(s);
        Check(JailNativeMethods.Chdir(root), "Failed to chdir into chroot directory", "ChdirNewRoot");
        var oldRoot = Path.Combine(root, "old_root");
        CreateDirAll(oldRoot);
        Check(JailNativeMethods.PivotRoot(".", "old_root"), "Failed to pivot root", "PivotRoot");
        Check(JailNativeMethods.Chdir("/"), "Failed to change current directory", "SetCurrentDir");
        Check(JailNativeMethods.UmountDetach("/old_root"), "Failed to unmount the old jail root", "UmountOldRoot");
        Directory.Delete("/old_root");

        var exec = "/" + s.ExecFileName;
        var argv = new List<string>
        {
            exec, "--id", s.Id,
            "--start-time-us", startUs.ToString(CultureInfo.InvariantCulture),
            "--start-time-cpu-us", startCpuUs.ToString(CultureInfo.InvariantCulture),
            "--parent-cpu-time-us", parentCpuUs.ToString(CultureInfo.InvariantCulture),
        };
        argv.AddRange(s.ExtraArgs);
        var env = KeptEnvironment().Select(kv => $"{kv.Key}={kv.Value}").ToList();
        // The stand-in's runtime would otherwise try to open its diagnostics socket in a /tmp the jail lacks.
        env.Add("DOTNET_EnableDiagnostics=0");
        Check(JailNativeMethods.DropTo(s.Uid, s.Gid), "Failed to exec into Firecracker", "Exec");
        var errno = JailNativeMethods.Execve(exec, argv, env);
        throw JailerError.Os("Failed to exec into Firecracker", "Exec", errno);
    }

    // See the file's opening comment: what a .NET exec file needs inside the jail, bound read-only.
    private static void ExposeRuntime(JailSettings s)
    {
        var root = s.ChrootDir;
        BindReadOnly("/usr", Path.Combine(root, "usr"), directory: true);
        foreach (var link in new[] { "lib", "lib64", "bin" })
        {
            var host = "/" + link;
            var target = Path.Combine(root, link);
            if (new FileInfo(host).LinkTarget is { } linkTarget && !Path.Exists(target))
                File.CreateSymbolicLink(target, linkTarget);
        }

        var proc = Path.Combine(root, "proc");
        CreateDirAll(proc);
        Check(JailNativeMethods.Mount("proc", proc, "proc", JailNativeMethods.MS_NOSUID | JailNativeMethods.MS_NODEV | JailNativeMethods.MS_NOEXEC),
            "Failed to mount /proc for the stand-in", "MountBind");

        var sourceDir = Path.GetDirectoryName(s.ExecFilePath)!;
        foreach (var name in ManagedFiles(sourceDir, s.ExecFileName))
            BindReadOnly(Path.Combine(sourceDir, name), Path.Combine(root, name), directory: false);
    }

    // A framework-dependent apphost loads NAME.dll, NAME.runtimeconfig.json, NAME.deps.json and the assemblies the
    // deps file lists from its own directory; nothing for a native exec file (a real firecracker, an AOT build).
    private static IEnumerable<string> ManagedFiles(string dir, string name)
    {
        var deps = Path.Combine(dir, name + ".deps.json");
        if (!File.Exists(Path.Combine(dir, name + ".dll")) || !File.Exists(deps))
            return [];
        var files = new HashSet<string>(StringComparer.Ordinal) { name + ".dll", name + ".runtimeconfig.json", name + ".deps.json" };
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(deps));
        foreach (var target in doc.RootElement.GetProperty("targets").EnumerateObject())
        {
            foreach (var library in target.Value.EnumerateObject())
            {
                if (library.Value.TryGetProperty("runtime", out var runtime))
                {
                    foreach (var file in runtime.EnumerateObject())
                        files.Add(Path.GetFileName(file.Name));
                }
            }
        }

        return files.Where(f => File.Exists(Path.Combine(dir, f)));
    }

    private static void BindReadOnly(string source, string target, bool directory)
    {
        if (directory)
            CreateDirAll(target);
        else if (!File.Exists(target))
            File.WriteAllBytes(target, []);
        Check(JailNativeMethods.Mount(source, target, null, JailNativeMethods.MS_BIND | JailNativeMethods.MS_REC), "Failed to bind mount the jail root directory", "MountBind");
        Check(JailNativeMethods.Mount(null, target, null, JailNativeMethods.MS_BIND | JailNativeMethods.MS_REMOUNT | JailNativeMethods.MS_RDONLY),
            "Failed to bind mount the jail root directory", "MountBind");
    }

    private static IEnumerable<KeyValuePair<string, string>> KeptEnvironment()
    {
        foreach (System.Collections.DictionaryEntry kv in Environment.GetEnvironmentVariables())
        {
            var key = (string)kv.Key;
            if (key.StartsWith("FAKE_FC_", StringComparison.Ordinal))
                yield return new(key, (string)kv.Value!);
        }
    }

    private static void JoinNetNs(string path)
    {
        var fd = NativeMethods.Open(path, NativeMethods.O_RDONLY);
        if (fd < 0)
            throw JailerError.FileOpen(path, -fd);
        var rc = JailNativeMethods.JoinNetNs(fd);
        NativeMethods.Close(fd);
        if (rc != 0)
            throw JailerError.SetNetNs(rc);
    }

    private static void WritePidFile(JailSettings s, int pid)
    {
        var path = s.PidFilePath;
        try
        {
            using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            stream.Write(System.Text.Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw JailerError.FileOpen(path, JailerFiles.Errno(e));
        }
    }

    private static void Own(string path, JailSettings s)
    {
        var rc = JailNativeMethods.Chown(path, s.Uid, s.Gid);
        if (rc != 0)
            throw JailerError.ChangeFileOwner(path, rc);
    }

    private static void CreateDirAll(string path)
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

    private static void Check(int errno, string what, string variant)
    {
        if (errno != 0)
            throw JailerError.Os(what, variant, errno);
    }

    // The host's misc minor for userfaultfd (dynamic); none when the kernel has no such device.
    private static uint UserfaultfdMinor()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/misc"))
            {
                var parts = line.Trim().Split(' ', 2);
                if (parts.Length == 2 && parts[1] == "userfaultfd")
                    return uint.Parse(parts[0], CultureInfo.InvariantCulture);
            }
        }
        catch (IOException)
        {
        }

        return uint.MaxValue;
    }

    private static long MonotonicMicroseconds() => Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000);

    private static long CpuMicroseconds() => (long)Process.GetCurrentProcess().TotalProcessorTime.TotalMicroseconds;
}
