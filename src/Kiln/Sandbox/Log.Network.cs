using Microsoft.Extensions.Logging;

namespace Kiln.Sandbox;

// The driver's network and rate-limit events (ids from 40, apart from the lifecycle's).
internal static partial class Log
{
    [LoggerMessage(40, LogLevel.Information, "Sandbox {SandboxId}: rate limits of {Kind} {DeviceId} changed")]
    public static partial void RateLimitChanged(ILogger logger, string sandboxId, string kind, string deviceId);

    [LoggerMessage(41, LogLevel.Information, "Sandbox {SandboxId}: its VMM is gone; its network (namespace, TAP, veth, NAT rules) was removed")]
    public static partial void NetworkSwept(ILogger logger, string sandboxId);

    [LoggerMessage(42, LogLevel.Error, "Sandbox {SandboxId}: its VMM is gone but its network could not be removed; the next start, stop or kiln ps tries again")]
    public static partial void NetworkSweepFailed(ILogger logger, Exception exception, string sandboxId);
}
