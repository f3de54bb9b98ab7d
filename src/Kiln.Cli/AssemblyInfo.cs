using System.Runtime.CompilerServices;
using System.Runtime.Versioning;

// Firecracker, KVM and every path kiln touches are Linux-only.
[assembly: SupportedOSPlatform("linux")]
[assembly: InternalsVisibleTo("Kiln.Cli.Tests")]
