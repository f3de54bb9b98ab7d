using System.Text;
using System.Text.Json.Nodes;
using Kiln.FakeFirecracker.Json;
using Kiln.FakeFirecracker.Vmm;

namespace Kiln.FakeFirecracker.Resources;

/// <summary>PUT/PATCH/DELETE /network-interfaces/{id}. As Firecracker, a PUT opens the TAP by name (TUNSETIFF, see
/// <see cref="TapDevices"/>): a missing one is created, one another process holds fails with EBUSY.</summary>
internal static class NetworkInterfaces
{
    public static ApiResponse Put(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var body = call.Parse(Schemas.Network);
        ApiCall.CheckPathId(id, body.Str("iface_id"));
        if (call.Vmm.Started)
        {
            Drives.RequirePci(call.Vmm);
        }

        Apply(call.Vmm, body);
        return ApiResponse.NoContent;
    }

    public static void Apply(VmmCore vmm, JsonObject o)
    {
        string? mac = null;
        if (o.OptStr("guest_mac") is { } macText)
        {
            _ = MacAddress.TryParse(macText, out var canonical);
            mac = canonical;
        }

        var net = new NetConfig(o.Str("iface_id"), o.Str("host_dev_name"), mac, RateLimiters.Built(o["rx_rate_limiter"]), RateLimiters.Built(o["tx_rate_limiter"]),
            o.OptU64("mtu") is { } mtu ? (int)mtu : null);
        var others = vmm.Resources.Nets.Where(n => n.IfaceId != net.IfaceId).ToList();
        if (mac is not null && others.Any(n => n.GuestMac == mac))
        {
            throw new VmmActionException($"Network config error: The MAC address is already in use: {mac}");
        }

        // vmm_config/net.rs NetBuilder::build: after the MAC check the interface's old device is dropped (closing its
        // TAP) before the new one is created, so a replacement that then fails leaves the interface gone.
        vmm.Resources.Nets.RemoveAll(n => n.IfaceId == net.IfaceId);
        vmm.Taps.Close(net.IfaceId);

        // IFNAMSIZ is 16 including the terminating NUL.
        if (Encoding.UTF8.GetByteCount(net.HostDevName) > 15)
        {
            throw new VmmActionException("Network config error: Could not create the network device: Open tap device failed: Invalid interface name");
        }

        if (others.Any(n => n.HostDevName == net.HostDevName))
        {
            throw new VmmActionException($"Network config error: Could not create the network device: Open tap device failed: Error while creating ifreq structure: Device or resource busy (os error 16). Invalid TUN/TAP Backend provided by {net.HostDevName}. Check our documentation on setting up the network devices.");
        }

        vmm.Taps.Open(net.IfaceId, net.HostDevName);
        VmResources.ReplaceOrAdd(vmm.Resources.Nets, net, n => n.IfaceId == net.IfaceId);

        vmm.BootPath = true;
    }

    public static ApiResponse Patch(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var body = call.Parse(Schemas.NetworkUpdate);
        ApiCall.CheckPathId(id, body.Str("iface_id"));
        var vmm = call.Vmm;
        vmm.RequirePostBoot();
        var i = vmm.Resources.Nets.FindIndex(n => n.IfaceId == id);
        if (i < 0)
        {
            // vmm_config/net.rs NetworkInterfaceError::DeviceUpdate around VmmError::FindDeviceError.
            throw new VmmActionException($"Network config error: Unable to update the net device: {Faults.DeviceNotFound}");
        }

        var net = vmm.Resources.Nets[i];
        vmm.Resources.Nets[i] = net with
        {
            RxRateLimiter = RateLimiters.Updated(net.RxRateLimiter, body["rx_rate_limiter"]),
            TxRateLimiter = RateLimiters.Updated(net.TxRateLimiter, body["tx_rate_limiter"]),
        };
        return ApiResponse.NoContent;
    }

    public static ApiResponse Delete(ApiCall call)
    {
        var id = ApiCall.CheckedId(call.Token(1));
        var vmm = call.Vmm;
        vmm.RequirePostBoot();
        Drives.RequirePci(vmm);
        if (vmm.Resources.Nets.RemoveAll(n => n.IfaceId == id) == 0)
        {
            throw new VmmActionException($"Network config error: Unable to update the net device: {Faults.DeviceNotFound}");
        }

        vmm.Taps.Close(id);

        return ApiResponse.NoContent;
    }
}
