using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>/balloon, /balloon/statistics and /balloon/hinting/*. The pretend guest inflates to the target at once.</summary>
internal static class Balloon
{
    private const string NotFound = "Balloon config error: No balloon device found.";
    private const string UpdateNotFound = "Balloon update error: " + Faults.DeviceNotFound;

    // devices/virtio/balloon/mod.rs BalloonError, inside VmmError::Balloon ("Balloon: {0}") inside
    // VmmActionError::BalloonUpdate ("Balloon update error: {0}") or InternalVmm ("Internal VMM error: {0}").
    private const string NotActive = "Balloon update error: Balloon: Device not activated yet.";
    private const string HintingNotEnabled = "Balloon update error: Balloon: Attempting to use hinting when not enabled";

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
                    // balloon/device.rs latest_stats: BalloonError::StatisticsDisabled (no activation check).
                    throw new VmmActionException("Internal VMM error: Balloon: Received stats query when stats are disabled.");
                }

                // Until the guest's driver runs, the device holds no pages and the guest has sent no statistics
                // (the optional fields are left out, as serde skips them).
                var active = vmm.BalloonActivated;
                var actual = active ? b.AmountMib : 0;
                var memBytes = (long)vmm.Resources.Machine.MemSizeMib << 20;
                return ApiResponse.Ok(VmmCore.Json(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("target_pages", b.AmountMib * 256L);
                    w.WriteNumber("actual_pages", actual * 256L);
                    w.WriteNumber("target_mib", b.AmountMib);
                    w.WriteNumber("actual_mib", actual);
                    if (active)
                    {
                        w.WriteNumber("free_memory", memBytes - ((long)b.AmountMib << 20));
                        w.WriteNumber("total_memory", memBytes);
                        w.WriteNumber("available_memory", memBytes - ((long)b.AmountMib << 20));
                    }

                    w.WriteEndObject();
                }));
            case "hinting" when call.Token(2) == "status":
                vmm.RequirePostBoot();
                // balloon/device.rs get_hinting_status: only whether hinting is enabled, not whether the device is active.
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
            // resources.rs set_balloon_device: BalloonConfigError::TooManyPagesRequested (07-preboot-devices).
            throw new VmmActionException("Balloon config error: Amount of pages requested is too large.");
        }

        if (b.FreePageHinting)
        {
            // logger's log_dev_preview_warning, from the VMM (main) thread (07-preboot-devices).
            vmm.Log.Warn("main", "[DevPreview] Free Page Hinting is in development preview.", LogOrigin.DevPreview);
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
                    // balloon/device.rs update_size: nothing changes until the guest's driver activated the device.
                    if (!vmm.BalloonActivated)
                    {
                        throw new VmmActionException(NotActive);
                    }

                    if (amount > vmm.Resources.Machine.MemSizeMib)
                    {
                        // update_size: BalloonError::TooMuchMemoryRequested(amount_mib).
                        throw new VmmActionException($"Balloon update error: Balloon: Requested memory should be less than {amount}MiB");
                    }

                    // The pretend guest moves the pages at once: one inflate or deflate queue event, counted as
                    // balloon/device.rs process_inflate and process_deflate_queue count theirs.
                    if (amount != b.AmountMib)
                    {
                        vmm.Metrics.Count(amount > b.AmountMib ? "balloon.inflate_count" : "balloon.deflate_count");
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
                    // balloon/device.rs update_stats_polling_interval: the same value is fine; switching on or off is
                    // not. It does not need an active device.
                    if (interval != b.StatsPollingIntervalS && (interval == 0 || b.StatsPollingIntervalS == 0))
                    {
                        throw new VmmActionException("Balloon update error: Balloon: Statistics cannot be enabled/disabled after activation.");
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
                    // start_hinting/stop_hinting send the command through update_free_page_hint_cmd, which needs an
                    // active device.
                    if (!vmm.BalloonActivated)
                    {
                        throw new VmmActionException(NotActive);
                    }

                    // balloon/device.rs start_hinting: a run's id is the last one plus 1 (wrapping), never below 2, as
                    // 0 (STOP) and 1 (DONE) are reserved; stop_hinting sends FREE_PAGE_HINT_DONE (1).
                    if (call.Token(2) == "start")
                    {
                        vmm.BalloonLastCmdId = unchecked(vmm.BalloonLastCmdId + 1) is var id && id <= 1 ? 2 : id;
                        vmm.BalloonHostCmd = vmm.BalloonLastCmdId;
                    }
                    else
                    {
                        vmm.BalloonHostCmd = 1;
                    }

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
            throw new VmmActionException(HintingNotEnabled);
        }
    }
}
