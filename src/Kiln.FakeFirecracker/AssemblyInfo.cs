// The stand-in mimics Linux-only programs (Firecracker and its jailer).
using System.Runtime.Versioning;

[assembly: SupportedOSPlatform("linux")]
