namespace Kiln.Vm;

/// <summary>
/// The names a Linux guest gives virtio block devices: vda … vdz, vdaa … (the kernel's virtblk naming). Firecracker
/// registers drives in the order they were first PUT (a root device would go first; Kiln attaches none), and the
/// guest probes them in that order, so position in attach order gives the name.
/// </summary>
public static class GuestDeviceNames
{
    /// <summary>The device path for the drive at <paramref name="index"/> (0-based) in attach order.</summary>
    public static string ForIndex(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        // Bijective base-26, as the kernel's virtblk_name_format.
        var letters = new Stack<char>();
        var n = index + 1;
        while (n > 0)
        {
            n--;
            letters.Push((char)('a' + (n % 26)));
            n /= 26;
        }
        return "/dev/vd" + new string([.. letters]);
    }
}
