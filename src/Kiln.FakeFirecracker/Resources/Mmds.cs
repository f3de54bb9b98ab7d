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
            // ASSUMED wording (MmdsDatastoreError::DataStoreLimitExceeded), answered with 413 like Firecracker.
            throw new VmmActionException("MMDS limit exceeded error: The MMDS patch request doesn't fit.", 413);
        }

        vmm.Resources.MmdsData = data;
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
        var ifaces = o["network_interfaces"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        if (ifaces.Count == 0)
        {
            throw new VmmActionException("MMMDS config error: The list of network interface IDs that allow forwarding MMDS requests is empty.");
        }

        if (ifaces.Any(id => vmm.Resources.Nets.All(n => n.IfaceId != id)))
        {
            throw new VmmActionException("MMMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.");
        }

        var address = o.OptStr("ipv4_address") ?? "169.254.169.254";
        if (!System.Net.IPAddress.TryParse(address, out var ip) || ip.GetAddressBytes() is not [169, 254, _, _])
        {
            throw new VmmActionException("MMMDS config error: The MMDS IPv4 address is not link local.");
        }

        vmm.Resources.MmdsConfig = new MmdsConfig(o.OptStr("version") ?? "V1", ifaces, address, o.Bool("imds_compat"));
        vmm.BootPath = true;
    }
}
