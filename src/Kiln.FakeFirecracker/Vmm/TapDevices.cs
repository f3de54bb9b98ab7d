// What real Firecracker does with a network interface's host_dev_name: open /dev/net/tun and attach to the TAP by
// name with TUNSETIFF (tap.rs `Tap::open_named`). The kernel creates a missing TAP (it vanishes when the fd closes,
// i.e. when the process ends) and answers EBUSY for one another fd holds, so tests see the same failures.
using Kiln.FakeFirecracker.Interop;

namespace Kiln.FakeFirecracker.Vmm;

internal sealed class TapDevices
{
    private const string OpenTapFailed = "Network config error: Could not create the network device: Open tap device failed: ";
    private readonly Dictionary<string, int> _fds = [];
    private readonly Lock _gate = new();

    /// <summary>Opens the TAP for an interface, dropping the interface's previous one first, as Firecracker replaces a device.</summary>
    /// <exception cref="VmmActionException">Firecracker's OpenTap text with the errno.</exception>
    public void Open(string ifaceId, string hostDevName)
    {
        lock (_gate)
        {
            Close(ifaceId);
            var fd = NativeMethods.Open("/dev/net/tun", NativeMethods.O_RDWR | NativeMethods.O_NONBLOCK);
            if (fd < 0)
            {
                throw new VmmActionException($"{OpenTapFailed}Couldn't open /dev/net/tun: {NativeMethods.OsError(-fd)}");
            }

            var errno = NativeMethods.TunSetIff(fd, hostDevName);
            if (errno != 0)
            {
                NativeMethods.Close(fd);
                throw new VmmActionException(
                    $"{OpenTapFailed}Error while creating ifreq structure: {NativeMethods.OsError(errno)}. Invalid TUN/TAP Backend provided by {hostDevName}. Check our documentation on setting up the network devices.");
            }

            _fds[ifaceId] = fd;
        }
    }

    /// <summary>Closes an interface's TAP (DELETE, or replacing it).</summary>
    public void Close(string ifaceId)
    {
        lock (_gate)
        {
            if (_fds.Remove(ifaceId, out var fd))
            {
                NativeMethods.Close(fd);
            }
        }
    }
}
