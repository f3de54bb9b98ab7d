using System.Text;
using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>GET/PUT/PATCH /mmds and PUT /mmds/config. The data store is kept; no guest reads it.</summary>
internal static class Mmds
{
    public static ApiResponse Get(ApiCall call)
    {
        return ApiResponse.Ok(call.Vmm.Resources.MmdsData is { } data ? JsonText.Of(data) : "{}");
    }

    public static ApiResponse Put(ApiCall call)
    {
        if (call.Token(1) == "config")
        {
            return PutConfig(call);
        }

        if (call.Token(1) is { } other)
        {
            throw Router.InvalidPathMethod("PUT", $"/mmds/{other}");
        }

        var data = ParseValue(call);
        Store(call.Vmm, data);
        return ApiResponse.NoContent;
    }

    public static ApiResponse Patch(ApiCall call)
    {
        var patch = ParseValue(call);
        // mmds/data_store.rs: Mmds::patch_data refuses until a PUT /mmds (or --metadata) initialised the store,
        // whether or not PUT /mmds/config ran (it creates the store, uninitialised).
        if (!call.Vmm.Resources.MmdsInitialized)
        {
            throw new VmmActionException("MMDS error: The MMDS data store is not initialized.");
        }

        var current = call.Vmm.Resources.MmdsData?.DeepClone();
        Store(call.Vmm, MergePatch(current, patch));
        return ApiResponse.NoContent;
    }

    private static JsonNode? ParseValue(ApiCall call)
    {
        try
        {
            return SerdeParser.Parse(call.Request.Body!, AnySpec.Instance);
        }
        catch (SerdeException e)
        {
            throw ApiCall.SerdeFault(e.Message, e.DebugForm);
        }
    }

    private static void Store(VmmCore vmm, JsonNode? data)
    {
        var size = Encoding.UTF8.GetByteCount(JsonText.Of(data));
        if ((ulong)size > vmm.Options.MmdsSizeLimit)
        {
            // MmdsDatastoreError::DataStoreLimitExceeded as VmmActionError::MmdsLimitExceeded, answered 413 (08-flags-and-exit-codes).
            throw new VmmActionException("MMDS limit exceeded error: The MMDS patch request doesn't fit.", 413);
        }

        vmm.Resources.MmdsData = data;
        vmm.Resources.MmdsInitialized = true;
    }

    // RFC 7396, which Firecracker's MMDS PATCH follows.
    private static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject p)
        {
            return patch?.DeepClone();
        }

        var t = target as JsonObject ?? new JsonObject();
        foreach (var (key, value) in p.ToList())
        {
            if (value is null)
            {
                t.Remove(key);
            }
            else
            {
                var merged = MergePatch(t[key]?.DeepClone(), value);
                t[key] = merged;
            }
        }

        return t;
    }

    private static ApiResponse PutConfig(ApiCall call)
    {
        var body = call.Parse(Schemas.MmdsConfig);
        if ((body.OptStr("version") ?? "V1") == "V1")
        {
            call.Deprecation = "PUT /mmds/config: V1 is deprecated. Use V2 instead.";
        }

        call.Vmm.RequirePreBoot();
        ApplyConfig(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void ApplyConfig(VmmCore vmm, JsonObject o)
    {
        // resources.rs set_mmds_network_stack_config: the address first, then the interface list.
        var address = o.OptStr("ipv4_address") ?? "169.254.169.254";
        _ = Ipv4Text.TryParse(address, out var ip);
        // utils::net::ipv4addr::is_link_local_valid: 169.254.0.0/16 without its first and last /24.
        if (ip is not [169, 254, not 0 and not 255, _])
        {
            throw new VmmActionException("MMMDS config error: The MMDS IPv4 address is not link local.");
        }

        var ifaces = o["network_interfaces"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        if (ifaces.Count == 0)
        {
            throw new VmmActionException("MMMDS config error: The list of network interface IDs that allow forwarding MMDS requests is empty.");
        }

        if (ifaces.Any(id => vmm.Resources.Nets.All(n => n.IfaceId != id)))
        {
            throw new VmmActionException("MMMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.");
        }

        vmm.Resources.MmdsConfig = new MmdsConfig(o.OptStr("version") ?? "V1", ifaces, address, o.Bool("imds_compat"));
        vmm.BootPath = true;
    }
}
