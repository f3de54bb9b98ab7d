// `firecracker --help`, verbatim from Firecracker v1.16.1 (tests/assets/samples/help.txt).
namespace Kiln.FakeFirecracker;

internal static class HelpText
{
    public const string Text = """
Firecracker v1.16.1

optional arguments:
  --api-sock <api-sock>                                     Path to unix domain socket used by the API. [default: "/run/firecracker.socket"]
  --boot-timer                                              Whether or not to load boot timer device for logging elapsed time since InstanceStart command.
  --config-file <config-file>                               Path to a file that contains the microVM configuration in JSON format.
  --describe-snapshot <describe-snapshot>                   Print the data format version of the provided snapshot state file.
  --enable-pci                                              Enables PCIe support.
  --help                                                    Show the help message.
  --http-api-max-payload-size <http-api-max-payload-size>   Http API request payload max size, in bytes. [default: "51200"]
  --id <id>                                                 MicroVM unique identifier. [default: "anonymous-instance"]
  --level <level>                                           Set the logger level.
  --log-path <log-path>                                     Path to a fifo or a file used for configuring the logger on startup.
  --metadata <metadata>                                     Path to a file that contains metadata in JSON format to add to the mmds.
  --metrics-path <metrics-path>                             Path to a fifo or a file used for configuring the metrics on startup.
  --mmds-size-limit <mmds-size-limit>                       Mmds data store limit, in bytes.
  --module <module>                                         Set the logger module filter.
  --no-api                                                  Optional parameter which allows starting and using a microVM without an active API socket.
  --no-seccomp                                              Optional parameter which allows starting and using a microVM without seccomp filtering. Not recommended.
  --parent-cpu-time-us <parent-cpu-time-us>                 Parent process CPU time (wall clock, microseconds). This parameter is optional.
  --seccomp-filter <seccomp-filter>                         Optional parameter which allows specifying the path to a custom seccomp filter. For advanced users.
  --show-level                                              Whether or not to output the level in the logs.
  --show-log-origin                                         Whether or not to include the file path and line number of the log's origin.
  --snapshot-version                                        Print the supported data format version.
  --start-time-cpu-us <start-time-cpu-us>                   Process start CPU time (wall clock, microseconds). This parameter is optional.
  --start-time-us <start-time-us>                           Process start time (wall clock, microseconds). This parameter is optional.
  --version                                                 Print the binary version number.
""";
}
