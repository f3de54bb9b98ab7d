using Kiln.Interop;

namespace Kiln.Sandbox;

/// <summary>Where sandboxes live by default.</summary>
public static class SandboxDirectories
{
    /// <summary>
    /// <c>/run/kiln</c> for root; otherwise <c>$XDG_RUNTIME_DIR/kiln</c>, or <c>/tmp/kiln-UID</c> without one. All
    /// are short enough for socket paths and are per-boot (tmpfs), like the VMMs they describe.
    /// </summary>
    public static string DefaultRoot
    {
        get
        {
            var uid = LibC.GetEuid();
            if (uid == 0)
                return "/run/kiln";
            var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
            return string.IsNullOrEmpty(runtime) ? $"/tmp/kiln-{uid}" : Path.Combine(runtime, "kiln");
        }
    }
}
