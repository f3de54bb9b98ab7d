using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>/balloon, /balloon/statistics and /balloon/hinting/*. The pretend guest inflates to the target at once.</summary>
internal static class Balloon
{
    private const string NotFound = "Balloon config error: No balloon device found.";
    private const string UpdateNotFound = "Balloon update error: " + Faults.DeviceNotFound;

    public static ApiResponse Get(ApiCall call)
    {
        var vmm = call.Vmm;
        switch (call.Token(1))
        {
            case "statistics":
                vmm.RequirePostBoot();
                var b = vmm.Resources.Balloon ?? throw new VmmActionException("Internal VMM error: " + Faults.DeviceNotFound);
                if (b.StatsPollingIntervalS == 0)
                {
                    // ASSUMED wording.
                    throw new VmmActionException("Balloon config error: Statistics for the balloon device are not enabled");
                }

                var memBytes = (long)vmm.Resources.Machine.MemSizeMib << 20;
                return ApiResponse.Ok(VmmCore.Json(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("target_pages", b.AmountMib * 256L);
                    w.WriteNumber("actual_pages", b.AmountMib * 256L);
                    w.WriteNumber("target_mib", b.AmountMib);
                    w.WriteNumber("actual_mib", b.AmountMib);
                    w.WriteNumber("free_memory", memBytes - ((long)b.AmountMib << 20));
                    w.WriteNumber("total_memory", memBytes);
                    w.WriteNumber("available_memory", memBytes - ((long)b.AmountMib << 20));
                    w.WriteEndObject();
                }));
            case "hinting" when call.Token(2) == "status":
                vmm.RequirePostBoot();
                RequireHinting(vmm);
                return ApiResponse.Ok(VmmCore.Json(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("host_cmd", vmm.BalloonHostCmd);
                    w.WriteNumber("guest_cmd", vmm.BalloonHostCmd);
                    w.WriteEndObject();
                }));
            case null:
                var config = vmm.Resources.Balloon ?? throw new VmmActionException(NotFound);
                return ApiResponse.Ok(VmmCore.Json(w => VmResources.WriteBalloon(w, config)));
            default:
                throw InvalidPath(call);
        }
    }

    private static RequestErrorException InvalidPath(ApiCall call) => Router.InvalidPathMethod(call.Request.Method, "balloon");

    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.Balloon);
        call.Vmm.RequirePreBoot();
        Apply(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        var b = new BalloonConfig((uint)o.U64("amount_mib"), o.Bool("deflate_on_oom"), (int)o.U64("stats_polling_interval_s"),
            o.Bool("free_page_hinting"), o.Bool("free_page_reporting"));
        if (b.AmountMib > vmm.Resources.Machine.MemSizeMib)
        {
            // ASSUMED wording.
            throw new VmmActionException("Balloon config error: Amount of pages requested is too large.");
        }

        vmm.Resources.Balloon = b;
        vmm.BootPath = true;
    }

    public static ApiResponse Patch(ApiCall call)
    {
        var vmm = call.Vmm;
        switch (call.Token(1))
        {
            case null:
                {
                    var body = call.Request.Body is null ? throw ApiCall.Generic("Empty PATCH request.") : call.Parse(Schemas.BalloonUpdate);
                    vmm.RequirePostBoot();
                    var b = vmm.Resources.Balloon ?? throw new VmmActionException(UpdateNotFound);
                    var amount = (uint)body.U64("amount_mib");
                    if (amount > vmm.Resources.Machine.MemSizeMib)
                    {
                        throw new VmmActionException("Balloon update error: Amount of pages requested is too large.");
                    }

                    vmm.Resources.Balloon = b with { AmountMib = amount };
                    return ApiResponse.NoContent;
                }

            case "statistics":
                {
                    var body = call.Request.Body is null ? throw ApiCall.Generic("Empty PATCH request.") : call.Parse(Schemas.BalloonStatsUpdate);
                    vmm.RequirePostBoot();
                    var b = vmm.Resources.Balloon ?? throw new VmmActionException(UpdateNotFound);
                    var interval = (int)body.U64("stats_polling_interval_s");
                    if ((interval == 0) != (b.StatsPollingIntervalS == 0))
                    {
                        // ASSUMED wording.
                        throw new VmmActionException("Balloon update error: Cannot enable/disable the statistics after boot.");
                    }

                    vmm.Resources.Balloon = b with { StatsPollingIntervalS = interval };
                    return ApiResponse.NoContent;
                }

            case "hinting" when call.Token(2) is "start" or "stop":
                {
                    if (call.Token(2) == "start" && call.Request.Body is not null)
                    {
                        _ = call.Parse(Schemas.BalloonHintingStart);
                    }

                    vmm.RequirePostBoot();
                    RequireHinting(vmm);
                    vmm.BalloonHostCmd = call.Token(2) == "start" ? vmm.BalloonHostCmd + 1 : 0;
                    return ApiResponse.NoContent;
                }

            default:
                throw InvalidPath(call);
        }
    }

    private static void RequireHinting(VmmCore vmm)
    {
        var b = vmm.Resources.Balloon ?? throw new VmmActionException(UpdateNotFound);
        if (!b.FreePageHinting)
        {
            // ASSUMED wording.
            throw new VmmActionException("Balloon update error: Free page hinting is not enabled on the balloon device.");
        }
    }
}
