// `kiln run --image`: the image boots as a private, writable copy in the sandbox's directory (a reflink where the file
// system can, else a copy: the image itself is never written, so many sandboxes can start from one), with the
// kernel told to mount it read-write (the agent as init remounts nothing), a vsock for the agent, and readiness =
// the agent answers its health call.
using Kiln.Host;
using Kiln.Sandbox;

namespace Kiln.Cli.Infrastructure;

internal static class ImageRun
{
    /// <summary>How long a detached run waits for the agent: a real guest on nested KVM has taken minutes to boot.</summary>
    public static readonly TimeSpan AgentTimeout = TimeSpan.FromSeconds(120);

    public const uint DefaultGuestCid = 3;

    public const string CopyName = "rootfs.ext4";

    /// <summary>Copies the image into the (new) sandbox directory and returns the copy's path.</summary>
    public static async Task<string> CopyAsync(string root, string name, string image, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(root, name);
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var copy = Path.Combine(directory, CopyName);
        await FileCopy.CloneOrCopyAsync(image, copy, cancellationToken);
        return copy;
    }

    /// <summary>Removes a copy made by <see cref="CopyAsync"/> whose sandbox was never created, and its directory if empty.</summary>
    public static void RemoveCopy(string copy)
    {
        File.Delete(copy);
        var directory = Path.GetDirectoryName(copy)!;
        if (Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any())
            Directory.Delete(directory);
    }

    /// <summary>The kernel parameters an agent image boots with: its root read-write.</summary>
    public static IReadOnlyList<KernelParam> WithImageParams(IReadOnlyList<KernelParam> configured) =>
        configured.Any(p => p.Key is "rw" or "ro") ? configured : [.. configured, new KernelParam("rw")];

    /// <summary>Waits until the sandbox's agent answers its health call, racing the VMM's exit.</summary>
    /// <exception cref="CliFailureException">It did not answer in time, or the VMM ended first.</exception>
    public static async Task WaitForAgentAsync(FirecrackerHypervisor hypervisor, string name, CancellationToken cancellationToken)
    {
        var vm = hypervisor.Vm ?? throw new CliFailureException($"'{name}' has no VM to wait for.");
        try
        {
            await vm.WaitForAgentAsync(AgentTimeout, cancellationToken);
        }
        catch (TimeoutException e)
        {
            throw new CliFailureException($"the guest agent of '{name}' did not answer within {AgentTimeout.TotalSeconds:0} s: {e.InnerException?.Message ?? e.Message} (is the image's /sbin/init kiln-agent, and does the kernel have virtio-vsock built in?)");
        }
        catch (Kiln.Vm.MicrovmStateException)
        {
            throw new CliFailureException($"'{name}' ended before its guest agent answered (see 'kiln logs {name}').");
        }
    }
}
