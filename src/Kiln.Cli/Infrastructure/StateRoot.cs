namespace Kiln.Cli.Infrastructure;

/// <summary>Where sandboxes live: <c>--root</c>, else <c>KILN_ROOT</c>, else a per-user runtime directory.</summary>
internal static class StateRoot
{
    public const string EnvironmentVariable = "KILN_ROOT";

    public static string Resolve(string? option, Func<string, string?> environment, bool privileged)
    {
        var chosen = NonEmpty(option) ?? NonEmpty(environment(EnvironmentVariable));
        if (chosen is not null)
            return Path.GetFullPath(chosen);
        if (privileged)
            return "/run/kiln";
        // An unprivileged user cannot write /run; XDG_RUNTIME_DIR is the per-user tmpfs made for exactly this.
        var runtime = NonEmpty(environment("XDG_RUNTIME_DIR"));
        return runtime is not null
            ? Path.Combine(runtime, "kiln")
            : Path.Combine(Path.GetTempPath(), $"kiln-{Environment.UserName}");
    }

    public static string Resolve(string? option) =>
        Resolve(option, Environment.GetEnvironmentVariable, Environment.IsPrivilegedProcess);

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
