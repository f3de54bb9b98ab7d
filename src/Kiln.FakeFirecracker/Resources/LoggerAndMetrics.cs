using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Interop;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT /logger and PUT /metrics. Neither counts as a boot-specific resource (a snapshot may follow).</summary>
internal static class LoggerAndMetrics
{
    public static ApiResponse PutLogger(ApiCall call)
    {
        var body = call.Parse(Schemas.Logger);
        call.Vmm.RequirePreBoot();
        ApplyLogger(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void ApplyLogger(VmmCore vmm, JsonObject o)
    {
        LogLevel? level = null;
        if (o.OptStr("level") is { } text && FcLogger.TryParseLevel(text, out var parsed))
        {
            level = parsed;
        }

        if (vmm.Log.Configure(o.OptStr("log_path"), level, o.OptBool("show_level"), o.OptBool("show_log_origin"), o.OptStr("module")) is var errno and not 0)
        {
            // VmmActionError::Logger ("Logger error: {0}") around LoggerUpdateError ("Failed to open target file: {0}").
            throw new VmmActionException($"Logger error: Failed to open target file: {NativeMethods.OsError(errno)}");
        }
    }

    public static ApiResponse PutMetrics(ApiCall call)
    {
        var body = call.Parse(Schemas.Metrics);
        call.Vmm.RequirePreBoot();
        ApplyMetrics(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void ApplyMetrics(VmmCore vmm, JsonObject o)
    {
        if (vmm.Metrics.Configured)
        {
            // vmm_config/metrics.rs: InitializationFailure around the metrics system's own refusal (07-preboot-devices).
            throw new VmmActionException("Metrics error: Cannot initialize the metrics system due to bad user input: Reinitialization of metrics not allowed.");
        }

        if (vmm.Metrics.Configure(o.Str("metrics_path")) is { } error)
        {
            throw new VmmActionException($"Metrics error: Cannot initialize the metrics system due to bad user input: {error}");
        }
    }
}
