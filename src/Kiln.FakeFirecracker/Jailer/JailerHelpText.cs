// `jailer --help`, verbatim from Firecracker v1.16.1 (tests/assets/jailer/help.txt).
namespace Kiln.FakeFirecracker.Jailer;

internal static class JailerHelpText
{
    public const string Text = """
Jailer v1.16.1

required arguments:
  --exec-file <exec-file>   File path to exec into.
  --gid <gid>               The group identifier the jailer switches to after exec.
  --id <id>                 Jail ID.
  --uid <uid>               The user identifier the jailer switches to after exec.

optional arguments:
  --cgroup <cgroup>                     Cgroup and value to be set by the jailer. It must follow this format: <cgroup_file>=<value> (e.g cpu.shares=10). This argument can be used multiple times to add multiple cgroups.
  --cgroup-version <cgroup-version>     Select the cgroup version used by the jailer. [default: "1"]
  --chroot-base-dir <chroot-base-dir>   The base folder where chroot jails are located. [default: "/srv/jailer"]
  --daemonize                           Daemonize the jailer before exec, by invoking setsid(), and redirecting the standard I/O file descriptors to /dev/null.
  --help                                Show the help message.
  --netns <netns>                       Path to the network namespace this microVM should join.
  --new-pid-ns                          Exec into a new PID namespace.
  --parent-cgroup <parent-cgroup>       Parent cgroup in which the cgroup of this microvm will be placed.
  --resource-limit <resource-limit>     Resource limit values to be set by the jailer. It must follow this format: <resource>=<value> (e.g no-file=1024). This argument can be used multiple times to add multiple resource limits. Current available resource values are:
		fsize: The maximum size in bytes for files created by the process.
		no-file: Specifies a value one greater than the maximum file descriptor number that can be opened by this process.
  --version                             Print the binary version number.

Any arguments after the -- separator will be supplied to the jailed binary.

""";
}
