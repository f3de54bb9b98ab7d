using Kiln.FakeFirecracker.Json;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT /actions and PATCH /vm.</summary>
internal static class Actions
{
    public static ApiResponse Put(ApiCall call)
    {
        var body = call.Parse(Schemas.Action);
        var vmm = call.Vmm;
        switch (body.Str("action_type"))
        {
            case "InstanceStart":
                vmm.StartMicroVm();
                break;
            case "FlushMetrics":
                vmm.RequirePostBoot();
                vmm.Metrics.Flush();
                break;
            default:
                vmm.SendCtrlAltDel();
                break;
        }

        return ApiResponse.NoContent;
    }

    public static ApiResponse PatchVm(ApiCall call)
    {
        var body = call.Parse(Schemas.Vm);
        if (body.Str("state") == "Paused")
        {
            call.TimedAction = "pause vm";
            call.Vmm.Pause();
        }
        else
        {
            call.TimedAction = "resume vm";
            call.Vmm.Resume();
        }

        return ApiResponse.NoContent;
    }
}
