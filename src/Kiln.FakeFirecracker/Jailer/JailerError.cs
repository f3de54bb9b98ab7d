// One failure of the jailer: the Display text it logs and the Debug form `main` prints as `Error: …` (both as
// src/jailer/src/main.rs at v1.16.1 renders them; FACTS.md's table is the ground truth).
using Kiln.FakeFirecracker.Interop;
using Kiln.FakeFirecracker.Json;

namespace Kiln.FakeFirecracker.Jailer;

internal sealed class JailerError(string display, string debug) : Exception(display)
{
    public string Debug { get; } = debug;

    public static JailerError Arguments(ArgParseException e) =>
        new($"Failed to parse arguments: {e.Message}", $"ArgumentParsing({e.DebugForm})");

    public static JailerError InstanceId(string problemDisplay, string problemDebug) =>
        new($"Invalid instance ID: {problemDisplay}", $"InvalidInstanceId({problemDebug})");

    public static JailerError Canonicalize(string path, int errno) =>
        new($"Failed to canonicalize path {path}: {NativeMethods.OsError(errno)}", $"Canonicalize({RustDebug.Str(path)}, {RustDebug.IoError(errno)})");

    public static JailerError NotAFile(string path) => new($"{path} is not a file", $"NotAFile({RustDebug.Str(path)})");

    public static JailerError NotADirectory(string path) => new($"{path} is not a directory", $"NotADirectory({RustDebug.Str(path)})");

    public static JailerError Uid(string text) => new($"Invalid uid: {text}", $"Uid({RustDebug.Str(text)})");

    public static JailerError Gid(string text) => new($"Invalid gid: {text}", $"Gid({RustDebug.Str(text)})");

    public static JailerError CgroupInvalidParentPath() =>
        new("Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'", "CgroupInvalidParentPath");

    public static JailerError CgroupInvalidVersion(string text) =>
        new($"{text} is an invalid cgroup version specifier", $"CgroupInvalidVersion({RustDebug.Str(text)})");

    public static JailerError CgroupFormat(string arg) => new($"Invalid format for cgroups: {arg}", $"CgroupFormat({RustDebug.Str(arg)})");

    public static JailerError CgroupHierarchyMissing(string controller) =>
        new($"Hierarchy not found: {controller}", $"CgroupHierarchyMissing({RustDebug.Str(controller)})");

    public static JailerError CgroupControllerUnavailable(string controller) =>
        new($"Controller {controller} is unavailable", $"CgroupControllerUnavailable({RustDebug.Str(controller)})");

    public static JailerError ReadToString(string path, int errno) =>
        new($"Failed to read file {path} into a string: {NativeMethods.OsError(errno)}", $"ReadToString({RustDebug.Str(path)}, {RustDebug.IoError(errno)})");

    public static JailerError Write(string path, int errno) =>
        new($"Failed to write to {path}: {NativeMethods.OsError(errno)}", $"Write({RustDebug.Str(path)}, {RustDebug.IoError(errno)})");

    public static JailerError ResLimitFormat(string arg) =>
        new($"Invalid format for resources limits: {arg}", $"ResLimitFormat({RustDebug.Str(arg)})");

    public static JailerError ResLimitArgument(string name) =>
        new($"Invalid resource argument: {name}", $"ResLimitArgument({RustDebug.Str(name)})");

    public static JailerError ResLimitValue(string value, string why) =>
        new($"Invalid limit value for resource: {value}: {why}", $"ResLimitValue({RustDebug.Str(value)}, {RustDebug.Str(why)})");

    public static JailerError Setrlimit(string resource) => new($"Failed to set limit for resource: {resource}", $"Setrlimit({RustDebug.Str(resource)})");

    public static JailerError CreateDir(string path, int errno) =>
        new($"Failed to create directory {path}: {NativeMethods.OsError(errno)}", $"CreateDir({RustDebug.Str(path)}, {RustDebug.IoError(errno)})");

    public static JailerError Copy(string from, string to, int errno) =>
        new($"Failed to copy {from} to {to}: {NativeMethods.OsError(errno)}", $"Copy({RustDebug.Str(from)}, {RustDebug.Str(to)}, {RustDebug.IoError(errno)})");

    public static JailerError FileOpen(string path, int errno) =>
        new($"Failed to open file {path}: {NativeMethods.OsError(errno)}", $"FileOpen({RustDebug.Str(path)}, {RustDebug.IoError(errno)})");

    public static JailerError SetNetNs(int errno) =>
        new($"Failed to join network namespace: netns: {NativeMethods.OsError(errno)}", $"SetNetNs({RustDebug.IoError(errno)})");

    public static JailerError MknodDev(int errno, string device) =>
        new($"Failed to create {device} via mknod inside the jail: {NativeMethods.OsError(errno)}", $"MknodDev({RustDebug.IoError(errno)}, {RustDebug.Str(device)})");

    public static JailerError ChangeFileOwner(string path, int errno) =>
        new($"Failed to change owner for {RustDebug.Str(path)}: {NativeMethods.OsError(errno)}", $"ChangeFileOwner({RustDebug.Str(path)}, {RustDebug.IoError(errno)})");

    public static JailerError Os(string what, string variant, int errno) =>
        new($"{what}: {NativeMethods.OsError(errno)}", $"{variant}({RustDebug.IoError(errno)})");
}
